// The live timeline: the last five minutes sampled once a second from the status stream —
// events/s on the WebSocket path and written to Realtime, the Realtime write p99, the
// Realtime breaker's state as a band (0 closed, 1 half-open or forced, 2 open), and each
// category's dual-write share (its flag's rollout percentage, from /v1/strategy). Drawn with
// the vendored uPlot. dashboard.js feeds it through window.switchyardTimeline.sample().
'use strict';

window.switchyardTimeline = (function () {
  var KEEP = 300;
  var CATEGORIES = ['critical', 'performance', 'user_activity', 'system', 'debug'];
  var BAND = { closed: 0, forced_closed: 1, half_open: 1, disabled: 1, open: 2, forced_open: 2 };
  var data = [[], [], [], [], []].concat(CATEGORIES.map(function () { return []; }));
  var last = null;
  var rates = null, migration = null;

  function make(id, series, scales) {
    var holder = document.getElementById(id);
    return new uPlot({ width: Math.max(holder.clientWidth, 320), height: 180, series: series, scales: scales,
      axes: [{}, { scale: series[1].scale }, { scale: series[series.length - 1].scale, side: 1 }] }, [data[0]], holder);
  }

  function charts() {
    if (rates || typeof uPlot === 'undefined') return;
    rates = make('timeline-rates', [{}, { label: 'WebSocket events/s', stroke: '#2563eb', scale: '/s' },
      { label: 'Realtime writes/s', stroke: '#16a34a', scale: '/s' },
      { label: 'Realtime write p99 ms', stroke: '#9333ea', scale: 'ms' }], {});
    var colours = ['#dc2626', '#ea580c', '#0891b2', '#4d7c0f', '#6b7280'];
    migration = make('timeline-migration', [{}, { label: 'breaker (0 closed, 2 open)', stroke: '#b91c1c', fill: 'rgba(220,38,38,0.15)', scale: 'state', paths: uPlot.paths.stepped({ align: 1 }) }]
      .concat(CATEGORIES.map(function (c, i) { return { label: c + ' %', stroke: colours[i], scale: '%' }; })),
      { state: { range: [0, 2] }, '%': { range: [0, 100] } });
  }

  function sample(status, breakerState, strategy) {
    var now = Date.now() / 1000;
    var published = status.published_total;
    var written = status.realtime.written + status.realtime.replayed + status.realtime.dead_letter_replayed;
    var rate = function (n, before) { return last && now > last.t ? (n - before) / (now - last.t) : null; };
    var shares = {};
    ((strategy && strategy.categories) || []).forEach(function (r) { shares[r.category] = strategy.strategy === 'realtime' ? 100 : (strategy.strategy === 'dual' && r.enabled ? r.percentage : 0); });
    var row = [now, last ? rate(published, last.published) : null, last ? rate(written, last.written) : null,
      status.realtime.write_latency ? status.realtime.write_latency.p99_ms : null,
      breakerState in BAND ? BAND[breakerState] : null].concat(CATEGORIES.map(function (c) { return c in shares ? shares[c] : null; }));
    row.forEach(function (v, i) { data[i].push(v); if (data[i].length > KEEP) data[i].shift(); });
    last = { t: now, published: published, written: written };
    var holder = document.getElementById('timeline');
    holder.dataset.points = String(data[0].length);
    holder.dataset.breaker = breakerState || 'unknown';
    charts();
    if (rates) rates.setData([data[0], data[1], data[2], data[3]]);
    if (migration) migration.setData([data[0], data[4]].concat(data.slice(5)));
  }

  return { sample: sample, points: function () { return data[0].length; }, last: function (i) { return data[i][data[i].length - 1]; } };
})();
