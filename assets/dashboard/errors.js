// Records every script error of the dashboard page in `window.__dashboardErrors`, besides the
// console, so a browser test (or a person in the devtools) can read them. Loaded before
// dashboard.js and not deferred: a syntax error in that file is caught here too.
'use strict';

window.__dashboardErrors = [];

(function recordScriptErrors() {
  function record(kind, detail) {
    window.__dashboardErrors.push({ kind: kind, detail: String(detail), at: new Date().toISOString() });
  }

  // Capture phase, so a script or stylesheet that fails to load (no bubbling) is seen too.
  window.addEventListener('error', function (event) {
    var target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      record('resource', 'failed to load ' + (target.src || target.href));
    } else {
      record('error', event.message + ' at ' + event.filename + ':' + event.lineno + ':' + event.colno);
    }
  }, true);

  window.addEventListener('unhandledrejection', function (event) {
    var reason = event.reason;
    record('unhandledrejection', reason && (reason.stack || reason.message) || reason);
  });

  window.addEventListener('securitypolicyviolation', function (event) {
    record('csp', event.violatedDirective + ' blocked ' + event.blockedURI);
  });

  var consoleError = console.error.bind(console);
  console.error = function () {
    var parts = Array.prototype.map.call(arguments, function (part) {
      return part && part.stack ? part.stack : String(part);
    });
    record('console.error', parts.join(' '));
    consoleError.apply(null, arguments);
  };
})();
