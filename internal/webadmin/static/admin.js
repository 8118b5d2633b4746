// Postern admin center: progressive enhancement only. Every page works
// without this script (forms post, links navigate); with it, search and
// paging swap the users table in place, a user opens in a flyout, "select
// all" ticks a page's boxes, and deletions ask first. Written for Postern
// instead of vendoring htmx: htmx was not available on the build machines
// without a download, and these few behaviours need no library.
(function () {
  "use strict";

  // fetchPart fetches url asking for the page's fragment (X-Partial) or
  // its content alone (X-Flyout), and returns the HTML text.
  function fetchPart(url, header) {
    var h = {};
    h[header] = "1";
    return fetch(url, { headers: h, credentials: "same-origin" }).then(function (r) {
      if (!r.ok && r.status !== 400) { throw new Error(r.status); }
      return r.text();
    });
  }

  function swap(target, url) {
    var el = document.querySelector(target);
    if (!el) { location.href = url; return; }
    el.setAttribute("aria-busy", "true");
    fetchPart(url, "X-Partial").then(function (html) {
      var tmp = document.createElement("div");
      tmp.innerHTML = html;
      var fresh = tmp.querySelector(target);
      if (fresh) { el.replaceWith(fresh); } else { location.href = url; }
      history.replaceState(null, "", url);
    }).catch(function () { location.href = url; });
  }

  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) { e.preventDefault(); return; }
    if (f.dataset.partial && f.method.toLowerCase() === "get") {
      e.preventDefault();
      var params = new URLSearchParams(new FormData(f));
      swap(f.dataset.partial, f.action + "?" + params.toString());
    }
  });

  var timer;
  document.addEventListener("input", function (e) {
    var f = e.target.form;
    if (f && f.dataset.partial && e.target.type === "search") {
      clearTimeout(timer);
      timer = setTimeout(function () { f.requestSubmit(); }, 300);
    }
  });

  // The navigation folds behind "Menu" on a phone: without the script it
  // stays open (and still works), with it the page starts with content.
  var navmenu = document.getElementById("navmenu");
  if (navmenu && window.matchMedia) {
    var narrow = window.matchMedia("(max-width: 700px)");
    var fit = function () { navmenu.open = !narrow.matches; };
    fit();
    if (narrow.addEventListener) { narrow.addEventListener("change", fit); }
  }

  var flyout = document.getElementById("flyout");
  var flyoutBody = document.getElementById("flyout-body");
  var opener = null;
  function closeFlyout() {
    if (!flyout || flyout.hidden) { return; }
    flyout.hidden = true;
    flyoutBody.innerHTML = "";
    if (opener) { opener.focus(); }
  }

  document.addEventListener("click", function (e) {
    var a = e.target.closest("a[data-partial], a[data-flyout], [data-close-flyout]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) { return; }
    if (a.hasAttribute("data-close-flyout")) { closeFlyout(); return; }
    e.preventDefault();
    if (a.dataset.partial) { swap(a.dataset.partial, a.href); return; }
    opener = a;
    fetchPart(a.href, "X-Flyout").then(function (html) {
      flyoutBody.innerHTML = html;
      flyout.hidden = false;
      var h = flyoutBody.querySelector("h1");
      if (h) {
        // The dialog is named by its heading.
        h.id = h.id || "flyout-title";
        flyout.setAttribute("aria-labelledby", h.id);
        h.tabIndex = -1;
        h.focus();
      }
    }).catch(function () { location.href = a.href; });
  });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { closeFlyout(); return; }
    // The flyout is modal (aria-modal): Tab cycles inside it.
    if (e.key !== "Tab" || !flyout || flyout.hidden) { return; }
    var f = flyout.querySelectorAll("a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), [tabindex='0']");
    if (!f.length) { return; }
    var first = f[0], last = f[f.length - 1];
    if (!flyout.contains(document.activeElement)) { e.preventDefault(); first.focus(); return; }
    if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
  });

  document.addEventListener("change", function (e) {
    var all = e.target.dataset && e.target.dataset.selectAll;
    if (!all) { return; }
    var boxes = e.target.closest("form").querySelectorAll("input[type=checkbox][name='" + all + "']");
    boxes.forEach(function (b) { b.checked = e.target.checked; });
  });
})();
