// Live pages: reload when the sandbox changes (server-sent events), unless
// the person is typing into a form or the page is already being left.
(function () {
  if (!document.body.dataset.live || !window.EventSource) return;
  var es = new EventSource("/events");
  var pending = null, leaving = false;
  function stop() {
    leaving = true;
    es.close();
    if (pending) clearTimeout(pending);
  }
  window.addEventListener("beforeunload", stop);
  window.addEventListener("pagehide", stop);
  document.addEventListener("submit", stop);
  es.onmessage = function () {
    if (pending || leaving) return;
    pending = setTimeout(function () {
      pending = null;
      var a = document.activeElement;
      if (leaving || (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA"))) return;
      location.reload();
    }, 150);
  };
})();
