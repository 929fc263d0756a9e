// The dashboard's panels: the Realtime banner and breakers (from /v1/breakers/stream), the
// strategy (/v1/strategy, refreshed when /v1/flags/stream announces a change), the flags with
// their controls, connection counts and the validator's consistency per category (both pushed by
// /v1/status/stream each second) and the event feed (/v1/stream). Each panel renders what the
// server said, never what a click hoped for: a flip shows once the server has answered.
'use strict';

(function dashboard() {
  var api = window.switchyardApi;
  var el = api.el;
  var CATEGORIES = ['critical', 'performance', 'user_activity', 'system', 'debug'];
  var FEED_LIMIT = 200;
  var TRANSITION_LIMIT = 50;
  // How the banner reads each breaker state: colour class, words, what it means for events.
  var BANNER = {
    closed: ['healthy', 'CLOSED', 'healthy: Realtime takes what the strategy sends it'],
    half_open: ['warning', 'HALF-OPEN', 'recovering: trial writes decide whether it closes'],
    open: ['failing', 'OPEN', 'failing: events fall back to WebSocket and wait in the backlog'],
    forced_open: ['failing', 'FORCED OPEN', 'held open by an operator: events fall back to WebSocket'],
    forced_closed: ['warning', 'FORCED CLOSED', 'held closed by an operator: failures do not trip it'],
    disabled: ['warning', 'DISABLED', 'breaker off: every write passes, nothing is recorded'],
  };
  var view = { breakers: new Map(), flags: new Map(), environment: null, status: null, paused: false };

  function $(selector) { return document.querySelector(selector); }
  function percent(ratio) { return (ratio * 100).toFixed(1) + '%'; }
  function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : ''; }

  // --- breakers -----------------------------------------------------------------------------

  function renderBanner() {
    var realtime = view.breakers.get('realtime') || view.breakers.values().next().value;
    if (!realtime) return;
    var look = BANNER[realtime.state] || ['unknown', realtime.state.toUpperCase(), ''];
    var banner = $('#realtime-banner');
    banner.className = 'banner ' + look[0];
    banner.dataset.state = realtime.state;
    $('#realtime-state').textContent = look[1];
    var held = view.status && view.status.realtime;
    var backlog = held ? ' · backlog ' + held.backlog_depth : '';
    if (held && held.work_queue) backlog += ' · waiting in the stream ' + held.work_queue.waiting;
    $('#realtime-detail').textContent = look[2] + ' · since ' + time(realtime.since) + backlog;
  }

  function renderBreakers() {
    var rows = Array.from(view.breakers.values()).map(function (b) {
      var calls = b.calls || {};
      return el('tr', { 'data-breaker': b.name, className: (BANNER[b.state] || ['unknown'])[0] },
        el('td', {}, b.name), el('td', { className: 'state' }, b.state), el('td', {}, b.mode),
        el('td', {}, time(b.since)), el('td', {}, percent(b.failure_rate || 0)),
        el('td', {}, [calls.success, (calls.failure || 0) + (calls.timeout || 0), calls.rejected].map(function (n) { return n || 0; }).join(' / ')),
        el('td', {}, b.latency_ms && b.latency_ms.p99 !== null ? b.latency_ms.p99.toFixed(1) : '–'));
    });
    $('#breakers tbody').replaceChildren.apply($('#breakers tbody'), rows);
    renderBanner();
  }

  function onTransition(t) {
    var known = view.breakers.get(t.breaker);
    // The mode follows from the state (a forced state is its mode; the policy's are auto).
    var MODES = { forced_open: 'force_open', forced_closed: 'force_closed', disabled: 'disabled' };
    if (known) { known.state = t.to; known.since = t.at; known.mode = MODES[t.to] || 'auto'; }
    var item = el('li', { className: (BANNER[t.to] || ['unknown'])[0] }, el('time', {}, time(t.at)),
      ' ' + t.breaker + ': ' + t.from + ' → ' + t.to + ' — ' + t.reason + (t.actor ? ' (' + t.actor + ')' : ''));
    var list = $('#transitions');
    list.prepend(item);
    while (list.children.length > TRANSITION_LIMIT) list.lastChild.remove();
    renderBreakers();
  }

  function openBreakers() {
    api.openStream('breakers', '/v1/breakers/stream', {
      state: function (status) { view.breakers.set(status.name, status); renderBreakers(); },
      sample: function (sample) {
        sample.breakers.forEach(function (status) { view.breakers.set(status.name, status); });
        renderBreakers();
      },
      transition: onTransition,
    });
  }

  // --- strategy, consistency ----------------------------------------------------------------

  function decidedBy(d) {
    return d.tier + (d.variable ? ' ' + d.variable : '') + (d.version !== undefined ? ' v' + d.version : '');
  }

  async function refreshStrategy() {
    try {
      var strategy = (await api.call('GET', '/v1/strategy')).json;
      view.strategy = strategy;
      $('#strategy-kind').textContent = strategy.strategy;
      $('#strategy-line').textContent = 'Strategy ' + strategy.strategy + ', decided by ' +
        decidedBy(strategy.decided_by) + ' (flag revision ' + strategy.revision + ').';
      var rows = strategy.categories.map(function (route) {
        var toRealtime = strategy.strategy === 'websocket' ? 'none'
          : strategy.strategy === 'realtime' ? 'all' : route.enabled ? route.percentage + '%' : 'none (disabled)';
        return el('tr', { 'data-category': route.category }, el('td', {}, route.category),
          el('td', {}, route.enabled ? 'enabled' : 'disabled'), el('td', {}, toRealtime),
          el('td', {}, route.adapters.join(', ')), el('td', {}, decidedBy(route.decided_by)));
      });
      $('#routes tbody').replaceChildren.apply($('#routes tbody'), rows);
    } catch (error) {
      api.showError('strategy', error);
    }
  }

  function percentOrDash(value) { return value === null || value === undefined ? '—' : value.toFixed(2) + '%'; }

  /** The validator's sliding window, pushed with every status sample. */
  function renderConsistency(validation) {
    var panel = $('#consistency');
    panel.dataset.validator = validation.enabled ? 'on' : 'off';
    var head = el('p', { className: validation.alerting.length ? 'bad' : 'muted' },
      (validation.enabled ? 'validation on' : 'validation off (flag validation.enabled)') +
      ' · window ' + validation.window_s + ' s · pending ' + validation.pending +
      ' · unchecked ' + validation.unchecked + ' · target ' + validation.target_consistency_percent + '%');
    var rows = validation.categories.map(function (c) {
      var wrong = Object.entries(c.discrepancies).filter(function (d) { return d[1] > 0; })
        .map(function (d) { return d[0] + ' ' + d[1]; }).join(', ');
      return el('tr', { 'data-category': c.category, className: c.breached ? 'breached' : '' },
        el('td', {}, c.category), el('td', {}, percentOrDash(c.consistency_percent)),
        el('td', {}, c.threshold_percent + '% mismatch'), el('td', {}, String(c.expected)),
        el('td', {}, wrong || 'none'));
    });
    var table = el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'category'), el('th', {}, 'consistency'),
      el('th', {}, 'alert above'), el('th', {}, 'compared'), el('th', {}, 'discrepancies'))), el('tbody', {}));
    table.tBodies[0].append.apply(table.tBodies[0], rows);
    panel.replaceChildren(head, table);
  }

  // --- flags --------------------------------------------------------------------------------

  function environment() { return $('#flag-environment').value || view.environment || 'production'; }

  function renderEnvironments() {
    var names = new Set(view.environment ? [view.environment] : []);
    view.flags.forEach(function (flag) { Object.keys(flag.environments || {}).forEach(function (n) { names.add(n); }); });
    var select = $('#flag-environment');
    var chosen = select.value || view.environment;
    select.replaceChildren.apply(select, Array.from(names).sort().map(function (n) { return el('option', { value: n }, n); }));
    if (chosen) select.value = chosen;
  }

  function flagRow(flag) {
    var config = (flag.environments || {})[environment()] || {};
    var rollout = config.rollout || { percentage: 100, variant: 'on' };
    var pinned = flag.source === 'env';
    var toggle = el('button', { type: 'button', className: 'flag-toggle ' + (config.enabled ? 'on' : 'off'),
      disabled: pinned, title: pinned ? 'pinned by ' + flag.pin.source_variable : 'turn ' + (config.enabled ? 'off' : 'on') },
      config.enabled ? 'ON' : 'OFF');
    toggle.onclick = function () { write(flag.key, toggle, config.enabled ? 'off' : 'on'); };
    var input = el('input', { type: 'number', min: 0, max: 100, step: 1, value: rollout.percentage, disabled: pinned, className: 'flag-percentage' });
    var set = el('button', { type: 'button', className: 'flag-rollout-set', disabled: pinned }, 'Set');
    set.onclick = function () { write(flag.key, set, 'rollout', Object.assign({}, rollout, { percentage: Number(input.value) })); };
    return el('tr', { 'data-flag': flag.key, 'data-enabled': String(!!config.enabled), 'data-percentage': String(rollout.percentage) },
      el('td', {}, flag.key, pinned ? el('span', { className: 'pin' }, ' pinned: ' + flag.pin.source_variable) : ''),
      el('td', {}, toggle), el('td', {}, input, set), el('td', {}, flag.version), el('td', {}, flag.description));
  }

  function renderFlags() {
    var rows = Array.from(view.flags.values()).sort(function (a, b) { return a.key < b.key ? -1 : 1; }).map(flagRow);
    $('#flags tbody').replaceChildren.apply($('#flags tbody'), rows);
  }

  /** Shows one flag as the server now has it, leaving the other rows (and their inputs) alone. */
  function showFlag(flag) {
    var row = document.querySelector('#flags tr[data-flag="' + CSS.escape(flag.key) + '"]');
    var shown = view.flags.get(flag.key);
    // The same version again (a write's answer, then the reload its announcement triggers):
    // keep the row, so a value being typed into it is not wiped.
    if (row && shown && shown.version === flag.version && shown.source === flag.source) return;
    var isNew = !view.flags.has(flag.key);
    view.flags.set(flag.key, flag);
    if (row && !isNew) row.replaceWith(flagRow(flag)); else { renderEnvironments(); renderFlags(); }
  }

  async function loadFlags() {
    try {
      var list = (await api.call('GET', '/v1/flags')).json;
      view.flags = new Map(list.flags.map(function (f) { return [f.key, f]; }));
      renderEnvironments();
      renderFlags();
    } catch (error) {
      api.showError('flags', error);
    }
  }

  async function reloadFlag(key) {
    try {
      var flag = (await api.call('GET', '/v1/flags/' + encodeURIComponent(key))).json;
      if (flag.archived) { view.flags.delete(key); renderFlags(); } else showFlag(flag);
    } catch (error) {
      api.showError('flag ' + key, error);
    }
  }

  /** A flip or rollout, sent with If-Match so it never overwrites a change this page has not seen. */
  async function write(key, button, action, rollout) {
    // Read-only (public read, no key yet): the change needs an admin key, so ask for one first.
    if (!api.key.get() && !(await askForKey('changing ' + key + ' needs an admin key'))) return;
    var flag = view.flags.get(key);
    var path = '/v1/flags/' + encodeURIComponent(key) + '/environments/' + encodeURIComponent(environment()) + '/';
    button.disabled = true;
    try {
      var answer = action === 'rollout'
        ? await api.call('PUT', path + 'rollout', { ifMatch: flag.version, body: Object.assign({ reason: 'dashboard' }, rollout) })
        : await api.call('POST', path + action + '?reason=dashboard', { ifMatch: flag.version });
      showFlag(answer.json);
    } catch (error) {
      api.showError((action === 'rollout' ? 'roll out ' : 'turn ' + action + ' ') + key, error);
      button.disabled = false;
      if (error.status === 412) reloadFlag(key);
    }
  }

  function openFlags() {
    api.openStream('flags', '/v1/flags/stream', {
      snapshot: function () { loadFlags(); refreshStrategy(); },
      flag_changed: function (change) { reloadFlag(change.key); refreshStrategy(); },
    });
  }

  // --- connections --------------------------------------------------------------------------

  function onStatus(status) {
    view.status = status;
    if (!view.environment) { view.environment = status.environment; renderEnvironments(); }
    var c = status.connections, r = status.realtime;
    var figures = [
      ['subscribers now', c.subscribers], ['opened since start', c.subscribers_total],
      ['lagged', c.lagged_total], ['dropped (too slow)', c.dropped_total],
      ['events accepted', status.published_total], ['Realtime target', r.target],
      ['Realtime queue', r.queue_depth + ' / ' + r.queue_capacity],
      ['Realtime backlog', r.backlog_depth + ' / ' + r.backlog_capacity],
      ['written to Realtime', r.written + r.replayed + r.dead_letter_replayed], ['dropped events', r.dropped],
    ];
    if (r.work_queue) {
      // Scale-out: routed events wait in the shared stream, not in this instance's backlog.
      figures.push(['Realtime work queue (NATS)', r.work_queue.waiting + ' waiting · ' +
        r.work_queue.unacknowledged + ' unacknowledged']);
    }
    var list = $('#connections');
    list.replaceChildren();
    figures.forEach(function (f) { list.append(el('dt', {}, f[0]), el('dd', {}, f[1])); });
    $('#summary-subscribers').textContent = c.subscribers;
    renderConsistency(status.validation);
    renderBanner();
    var realtime = view.breakers.get('realtime');
    window.switchyardTimeline.sample(status, realtime ? realtime.state : null, view.strategy);
  }

  // --- event feed ---------------------------------------------------------------------------

  function feedStatus(text) { $('#feed-status').textContent = text; }

  function addEvent(frame) {
    if (view.paused) return;
    var e = frame.event;
    var data = JSON.stringify(e.data);
    var row = el('tr', { 'data-offset': String(frame.offset), 'data-event-type': e.event_type, className: e.category },
      el('td', {}, frame.offset), el('td', {}, time(e.timestamp)), el('td', {}, e.category),
      el('td', {}, e.event_type), el('td', {}, e.source), el('td', { title: data }, data.length > 160 ? data.slice(0, 160) + '…' : data));
    var body = $('#feed tbody');
    body.prepend(row);
    while (body.children.length > FEED_LIMIT) body.lastChild.remove();
  }

  function openFeed() {
    var query = new URLSearchParams();
    var categories = Array.from(document.querySelectorAll('#feed-categories input:checked')).map(function (i) { return i.value; });
    if (categories.length) query.set('categories', categories.join(','));
    if ($('#feed-event-types').value.trim()) query.set('event_types', $('#feed-event-types').value.trim());
    if ($('#feed-sources').value.trim()) query.set('sources', $('#feed-sources').value.trim());
    var path = '/v1/stream' + (query.toString() ? '?' + query : '');
    $('#feed').dataset.subscribed = 'false';
    api.openStream('events', path, {
      subscribed: function (s) { $('#feed').dataset.subscribed = 'true'; feedStatus('live from offset ' + s.offset + (query.toString() ? ', filtered: ' + decodeURIComponent(query) : '')); },
      event: addEvent,
      lagged: function (l) { feedStatus('fell behind by ' + l.missed + ' events; caught up from history'); },
      error: function (e) { api.showError('event stream', new Error(e.message)); },
      system: function (s) { feedStatus('system: ' + (s.kind || '') + ' ' + JSON.stringify(s)); },
    });
  }

  // --- start, key ---------------------------------------------------------------------------

  function start() {
    $('#login').hidden = true;
    $('#board').hidden = false;
    $('#logout').hidden = false;
    openBreakers();
    openFlags();
    api.openStream('status', '/v1/status/stream', { status: onStatus });
    openFeed();
    document.body.dataset.connected = 'true';
  }

  function stop() {
    api.closeAll();
    document.body.dataset.connected = 'false';
    $('#board').hidden = true;
    $('#logout').hidden = true;
    $('#login').hidden = false;
  }

  // A control that needs a key, used on the read-only page: show the key form beside the board
  // and resolve once a key is given (true) or the form is dismissed (false).
  var keyWanted = null;
  function askForKey(why) {
    $('#login-why').textContent = why;
    $('#login').hidden = false;
    $('#key-input').focus();
    return new Promise(function (resolve) { keyWanted = resolve; });
  }

  $('#login-form').addEventListener('submit', async function (event) {
    event.preventDefault();
    api.key.set($('#key-input').value.trim());
    $('#key-input').value = '';
    try {
      await api.call('GET', '/v1/breakers');
      document.body.dataset.access = 'key';
      var wanted = keyWanted;
      keyWanted = null;
      start();
      if (wanted) wanted(true);
    } catch (error) {
      api.key.forget();
      api.showError('key', error);
    }
  });
  $('#login-cancel').addEventListener('click', function () {
    if (!keyWanted) return;
    $('#login').hidden = true;
    keyWanted(false);
    keyWanted = null;
  });
  $('#logout').addEventListener('submit', function (event) { event.preventDefault(); api.key.forget(); stop(); });
  $('#feed-filter').addEventListener('submit', function (event) { event.preventDefault(); openFeed(); });
  $('#feed-pause').addEventListener('click', function () {
    view.paused = !view.paused;
    $('#feed-pause').textContent = view.paused ? 'Resume' : 'Pause';
  });
  $('#feed-clear').addEventListener('click', function () { $('#feed tbody').replaceChildren(); });
  $('#flag-environment').addEventListener('change', renderFlags);
  CATEGORIES.forEach(function (c) {
    $('#feed-categories').append(el('label', {}, el('input', { type: 'checkbox', value: c }), ' ' + c));
  });

  // No key kept: a server with SWITCHYARD_PUBLIC_READ=true (it marks the page so) answers
  // reads without one, and the page opens read-only; controls that change things ask for an
  // admin key when used.
  function open() {
    if (api.key.get()) { document.body.dataset.access = 'key'; start(); return; }
    stop();
    if (document.body.dataset.publicRead !== 'true') { document.body.dataset.access = 'none'; return; }
    document.body.dataset.access = 'public';
    start();
    $('#logout').hidden = true;
  }
  open();
  window.__dashboardReady = true;
})();
