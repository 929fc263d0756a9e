// The dashboard's link to the API: the key (this tab's session storage only), REST calls that
// turn a problem+json answer into an error the page shows, the list of errors on screen, and
// the Server-Sent Event streams (with the key as `?token=`, since EventSource cannot send
// headers). Everything the page learns arrives by these streams; nothing polls.
'use strict';

window.switchyardApi = (function () {
  var KEY_STORAGE = 'switchyard.key';
  var ERRORS_SHOWN = 8;
  var RETRY_MS = 3000;
  var streams = new Map();

  function el(tag, props) {
    var node = document.createElement(tag);
    Object.entries(props || {}).forEach(function (entry) {
      if (entry[0].startsWith('data-')) node.setAttribute(entry[0], entry[1]);
      else node[entry[0]] = entry[1];
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      node.append(child instanceof Node ? child : String(child === undefined || child === null ? '' : child));
    }
    return node;
  }

  /** An API answer that was not 2xx, with the problem document's title, detail and fields. */
  class ApiProblem extends Error {
    constructor(status, problem, what) {
      var fields = (problem.errors || []).map(function (e) { return e.field + ': ' + e.message; });
      var text = (status ? status + ' ' : '') + (problem.title || 'error') +
        (problem.detail ? ': ' + problem.detail : '') + (fields.length ? ' (' + fields.join('; ') + ')' : '');
      super(what + ' failed: ' + text);
      this.status = status;
      this.problem = problem;
    }
  }

  var key = {
    get: function () { return sessionStorage.getItem(KEY_STORAGE); },
    set: function (value) { sessionStorage.setItem(KEY_STORAGE, value); },
    forget: function () { sessionStorage.removeItem(KEY_STORAGE); },
  };

  /** One REST call; resolves to {json, etag}, rejects with an ApiProblem. */
  async function call(method, path, options) {
    options = options || {};
    // Without a key (a server with SWITCHYARD_PUBLIC_READ=true) the request goes without one.
    var headers = key.get() ? { Authorization: 'Bearer ' + key.get() } : {};
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (options.ifMatch !== undefined) headers['If-Match'] = '"' + options.ifMatch + '"';
    var what = method + ' ' + path.split('?')[0];
    var response;
    try {
      response = await fetch(path, {
        method: method, headers: headers, signal: options.signal,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch (error) {
      throw new ApiProblem(0, { title: 'no answer from the server', detail: error.message }, what);
    }
    if (!response.ok) {
      var text = await response.text();
      var problem;
      try { problem = JSON.parse(text); } catch (_) { problem = { title: response.statusText, detail: text }; }
      throw new ApiProblem(response.status, problem, what);
    }
    if (options.headersOnly) return { response: response };
    var body = await response.text();
    return { json: body ? JSON.parse(body) : null, etag: response.headers.get('ETag') };
  }

  /** Puts an error on the page (newest first). Not console.error: that is for script bugs. */
  function showError(context, error) {
    var message = error && error.message ? error.message : String(error);
    var list = document.getElementById('errors');
    var item = el('li', { className: 'error' }, el('time', {}, new Date().toLocaleTimeString()), ' ' + context + ': ' + message);
    item.append(el('button', { type: 'button', className: 'dismiss', title: 'Dismiss', onclick: function () { item.remove(); } }, '×'));
    list.prepend(item);
    while (list.children.length > ERRORS_SHOWN) list.lastChild.remove();
    console.warn('switchyard dashboard:', context + ': ' + message);
  }

  function setStreamStatus(name, status) {
    var holder = document.getElementById('streams');
    var chip = holder.querySelector('[data-stream="' + name + '"]');
    if (!chip) {
      chip = el('span', { className: 'stream', 'data-stream': name });
      holder.append(chip);
    }
    chip.dataset.status = status;
    chip.textContent = name + ' ' + status;
  }

  function withToken(path) {
    if (!key.get()) return path;
    return path + (path.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(key.get());
  }

  /**
   * Opens (or re-opens) the stream `name`. `handlers` maps SSE event names to functions of the
   * parsed data. The browser reconnects by itself after a dropped connection; when it gives up
   * (an answer that is not an event stream, such as a 401) the reason is fetched and shown,
   * and the stream is tried again a little later.
   */
  function openStream(name, path, handlers) {
    closeStream(name);
    var source = new EventSource(withToken(path));
    var entry = { source: source, retry: null };
    streams.set(name, entry);
    setStreamStatus(name, 'connecting');
    source.onopen = function () { setStreamStatus(name, 'live'); };
    Object.keys(handlers).forEach(function (event) {
      source.addEventListener(event, function (message) {
        // The connection's own `error` events carry no data; `onerror` deals with them.
        if (message.data === undefined) return;
        var data;
        try { data = JSON.parse(message.data); } catch (_) {
          showError(name + ' stream', new Error('an unreadable `' + event + '` event: ' + message.data));
          return;
        }
        handlers[event](data);
      });
    });
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) {
        setStreamStatus(name, 'reconnecting');
        return;
      }
      setStreamStatus(name, 'failed');
      explainFailure(name, path).finally(function () {
        if (streams.get(name) === entry) {
          entry.retry = setTimeout(function () { openStream(name, path, handlers); }, RETRY_MS);
        }
      });
    };
  }

  /** Asks the same URL again with fetch, which (unlike EventSource) shows the answer. */
  async function explainFailure(name, path) {
    var abort = new AbortController();
    try {
      await call('GET', path, { headersOnly: true, signal: abort.signal });
      showError(name + ' stream', new Error('the stream closed; reconnecting'));
    } catch (error) {
      showError(name + ' stream', error);
    } finally {
      abort.abort();
    }
  }

  function closeStream(name) {
    var entry = streams.get(name);
    if (!entry) return;
    entry.source.close();
    clearTimeout(entry.retry);
    streams.delete(name);
  }

  function closeAll() {
    Array.from(streams.keys()).forEach(closeStream);
    document.getElementById('streams').replaceChildren();
  }

  return { el: el, key: key, call: call, showError: showError, openStream: openStream, closeAll: closeAll, ApiProblem: ApiProblem };
})();
