// Live pages: reload when the sandbox changes (server-sent events), unless
// the person is typing into a form.
(function () {
  if (!document.body.dataset.live || !window.EventSource) return;
  var es = new EventSource("/events");
  var pending = null;
  es.onmessage = function () {
    if (pending) return;
    pending = setTimeout(function () {
      var a = document.activeElement;
      if (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA")) { pending = null; return; }
      location.reload();
    }, 150);
  };
})();
