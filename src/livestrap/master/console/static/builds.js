// livestrap console, one build's page: follow its log live. An EventSource on the page's
// own SSE URL (pre#build-log data-log-url, same origin, the session cookie); each line is
// appended as text, never as markup. The stream ends with an `end` event saying how the
// build ended: the state shows at once and the polled status fragment refreshes.
(() => {
  "use strict";
  const log = document.getElementById("build-log");
  if (!(log instanceof HTMLElement) || !log.dataset.logUrl || !("EventSource" in window)) {
    return;
  }
  const source = new EventSource(log.dataset.logUrl);
  let opened = false;
  log.dataset.stream = "connecting";

  source.addEventListener("open", () => {
    if (opened) {
      log.textContent = ""; // a reconnect streams the log from its start again
    }
    opened = true;
    log.dataset.stream = "open";
  });

  source.addEventListener("message", (event) => {
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.append(event.data + "\n");
    if (atEnd) {
      log.scrollTop = log.scrollHeight;
    }
  });

  source.addEventListener("end", (event) => {
    source.close(); // else the browser reconnects and replays the whole log
    log.dataset.stream = "ended";
    let end = null;
    try {
      end = JSON.parse(event.data);
    } catch (err) {
      end = null;
    }
    const state = document.getElementById("build-state");
    if (end && typeof end.state === "string" && state) {
      state.textContent = end.state;
      state.className = "badge " + end.state;
      log.dataset.state = end.state;
    }
    document.body.dispatchEvent(new CustomEvent("build-end"));
  });

  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      log.dataset.stream = "failed"; // e.g. the session ended: reload to log in again
    }
  });
})();
