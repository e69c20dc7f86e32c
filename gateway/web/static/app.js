// The liaison web app's only script: a live family count on the compose page and a delivery
// chart that refreshes itself until every message has left. Pages work without it.
"use strict";

(function () {
  function audienceExpression(form) {
    var free = form.querySelector("#audience").value.trim();
    if (free) { return free; }
    var terms = [];
    ["school", "grade", "language", "tag"].forEach(function (key) {
      var el = form.querySelector("#aud_" + key);
      var value = el ? el.value.trim() : "";
      if (value) { terms.push(key + ":" + (value.indexOf(" ") >= 0 ? '"' + value + '"' : value)); }
    });
    return terms.join(" ");
  }

  // Fill {name} slots of an interface sentence with figures, formatted in the page's language.
  function say(sentence, values) {
    var lang = document.documentElement.lang || "en";
    return sentence.replace(/\{(\w+)\}/g, function (all, name) {
      var value = values[name];
      return typeof value === "number" ? value.toLocaleString(lang) : String(value);
    });
  }

  function liveCount(form) {
    var out = document.getElementById("audience-count");
    if (!out) { return; }
    var timer = null;
    function update() {
      var channels = [];
      form.querySelectorAll("input[name^='channel_']:checked").forEach(function (el) {
        channels.push(el.name.slice("channel_".length));
      });
      var params = new URLSearchParams({
        audience: audienceExpression(form),
        channels: channels.join(","),
        policy: form.querySelector("#policy").value
      });
      fetch("/api/audience?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : r.json().then(function (e) { throw new Error(e.error); }); })
        .then(function (data) {
          var langs = Object.keys(data.by_language).map(function (k) { return k + " " + data.by_language[k]; });
          // the sentences come translated from the page (data-*), the figures from the API
          out.textContent = say(out.dataset.summary, { families: data.families, messages: data.messages }) +
            (langs.length ? " (" + langs.join(", ") + ")" : "") +
            (data.skipped ? " · " + say(out.dataset.skipped, { count: data.skipped }) : "");
          out.dataset.families = String(data.families);
        })
        .catch(function (err) { out.textContent = say(out.dataset.error, { error: err.message }); out.dataset.families = ""; });
    }
    form.querySelectorAll(".aud").forEach(function (el) {
      el.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(update, 250); });
      el.addEventListener("change", update);
    });
    update();
  }

  function autoRefresh(box) {
    var url = box.dataset.refreshUrl;
    function tick() {
      var current = box.querySelector("[data-final]");
      if (current && current.dataset.final === "true") { return; }
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { box.innerHTML = html; } })
        .finally(function () { setTimeout(tick, 1500); });
    }
    setTimeout(tick, 1500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("compose") || document.getElementById("survey-builder");
    if (form) { liveCount(form); }
    document.querySelectorAll("[data-refresh-url]").forEach(autoRefresh);
  });
})();
