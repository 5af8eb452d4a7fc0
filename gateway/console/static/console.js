// Slipway console: the build page's log, read as it streams. Everything else is plain forms.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("log");
  if (!log || !log.dataset.src) return;
  const url = log.dataset.src + (log.dataset.follow ? "?follow=1" : "");
  fetch(url, { credentials: "same-origin" }).then(async (resp) => {
    if (!resp.ok || !resp.body) { log.textContent = await resp.text(); return; }
    const reader = resp.body.getReader();
    const text = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(text.decode(value, { stream: true }));
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
    log.dataset.ended = "1";
    // The stream ends with the build: show its final status, steps and tags.
    if (log.dataset.follow) setTimeout(() => location.reload(), 1000);
  }).catch((err) => { log.append("\n[" + err + "]"); });
});
