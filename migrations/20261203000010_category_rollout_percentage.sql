-- One percentage per category (issue 12). Until now a `broadcast.category.*` flag carried its
-- dual-write share as a `percentage` field inside its JSON variant, and its own rollout stood
-- at 100%, so the knob that REST, the CLI, the page and rollout plans turn did not move the
-- share. From here on the share IS the flag's rollout percentage, evaluated per event with the
-- event id as targeting key; the variants only say whether a key inside (`on`) or outside
-- (`off`) the rollout is dual-written, plus the legacy `adapters` list shown by
-- GET /v1/strategy.
--
-- Each category flag still in the old form is rewritten so that it routes exactly the share it
-- routed before: per environment, the variant its 100% rollout served gives the share
-- (`percentage`) and whether the category was on (`enabled`, now the environment's kill
-- switch). A flag whose old form is not the plain "100% to one variant" (rules, weights, a
-- partial rollout) is left as it is and named in a NOTICE: an operator configured it by hand
-- and should look at it. Each rewrite is a new version with its audit row, and the flag set's
-- revision moves once, like any other write.

DO $$
DECLARE
    flag record;
    env_name text;
    env jsonb;
    served jsonb;
    new_envs jsonb;
    off_adapters jsonb;
    on_adapters jsonb;
    convertible boolean;
    changed integer := 0;
    new_revision bigint;
BEGIN
    SELECT revision + 1 INTO new_revision FROM switchyard.flag_revision;
    FOR flag IN
        SELECT key, definition, version FROM switchyard.flags
        WHERE key IN ('broadcast.category.critical', 'broadcast.category.performance',
                      'broadcast.category.user_activity', 'broadcast.category.system',
                      'broadcast.category.debug')
          AND EXISTS (SELECT 1 FROM jsonb_each(definition -> 'variants') v
                      WHERE jsonb_typeof(v.value) = 'object' AND v.value ? 'percentage')
        ORDER BY key
    LOOP
        convertible := true;
        new_envs := '{}'::jsonb;
        off_adapters := COALESCE(flag.definition #> '{variants,off,adapters}', '["websocket"]'::jsonb);
        on_adapters := NULL;
        FOR env_name, env IN SELECT * FROM jsonb_each(COALESCE(flag.definition -> 'environments', '{}'::jsonb))
        LOOP
            IF jsonb_array_length(COALESCE(env -> 'rules', '[]'::jsonb)) > 0
               OR jsonb_array_length(COALESCE(env #> '{rollout,variant_weights}', '[]'::jsonb)) > 0
               OR COALESCE((env #>> '{rollout,percentage}')::numeric, 100) <> 100 THEN
                convertible := false;
                EXIT;
            END IF;
            served := flag.definition -> 'variants' -> (COALESCE(env #>> '{rollout,variant}', 'on'));
            IF served IS NULL OR jsonb_typeof(served -> 'percentage') <> 'number' THEN
                convertible := false;
                EXIT;
            END IF;
            on_adapters := COALESCE(on_adapters, served -> 'adapters');
            new_envs := new_envs || jsonb_build_object(env_name, jsonb_build_object(
                'enabled', COALESCE((env ->> 'enabled')::boolean, false)
                           AND COALESCE((served ->> 'enabled')::boolean, false),
                'off_variant', 'off',
                'default_variant', 'off',
                'rollout', jsonb_build_object(
                    'percentage', LEAST(100, GREATEST(0, round((served ->> 'percentage')::numeric))),
                    'variant', 'on')
                || CASE WHEN env #> '{rollout,group_id}' IS NULL THEN '{}'::jsonb
                        ELSE jsonb_build_object('group_id', env #> '{rollout,group_id}') END));
        END LOOP;
        IF NOT convertible THEN
            RAISE NOTICE 'flag % is not in the plain legacy form; left as it is', flag.key;
            CONTINUE;
        END IF;
        UPDATE switchyard.flags
        SET definition = flag.definition
                || jsonb_build_object(
                    'description', format('Share of %s events dual-written to Realtime: the rollout percentage, sticky by event id. Off (the kill switch) = WebSocket only.',
                                          substr(flag.key, length('broadcast.category.') + 1)),
                    'variants', jsonb_build_object(
                        'off', jsonb_build_object('enabled', false, 'adapters', off_adapters),
                        'on', jsonb_build_object('enabled', true,
                                                 'adapters', COALESCE(on_adapters, '["websocket", "realtime"]'::jsonb))),
                    'environments', new_envs),
            version = version + 1,
            updated_at = now()
        WHERE key = flag.key;
        INSERT INTO switchyard.flag_audit (flag_key, actor, action, reason, before, after, version, revision)
        SELECT key, 'migration', 'update',
               'the dual-write share moves from the variant''s percentage to the flag''s rollout percentage',
               flag.definition, definition, version, new_revision
        FROM switchyard.flags WHERE key = flag.key;
        changed := changed + 1;
    END LOOP;
    IF changed > 0 THEN
        UPDATE switchyard.flag_revision SET revision = new_revision, updated_at = now();
    END IF;
END
$$;
