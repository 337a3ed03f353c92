// The episode page's player: every time link plays from its moment, the line being spoken is highlighted and
// kept in view, ?t=SECONDS opens the page at that moment, and "Share this moment" gives a link to now.
// Everything here is an enhancement: without JavaScript the links still go to ?t=...#t... and the audio
// element starts there through its #t= media fragment.
(function () {
  "use strict";

  var audio = document.getElementById("player-audio");
  if (!audio) return;

  var lines = Array.prototype.slice.call(document.querySelectorAll("#transcript .line[data-start]"));
  var lineStarts = lines.map(function (line) { return parseFloat(line.getAttribute("data-start")); });
  var chapters = Array.prototype.slice.call(document.querySelectorAll(".chapter[data-t]"));
  var chapterStarts = chapters.map(function (link) { return parseFloat(link.getAttribute("data-t")); });
  var currentLine = -1;
  var currentChapter = -1;
  var userScrolledAt = 0;
  var autoScrolledAt = 0;
  var FOLLOW_PAUSE_MS = 4000;

  // Index of the last start <= t (binary search over sorted start times), -1 before the first.
  function indexAt(starts, t) {
    var lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (starts[mid] <= t + 0.05) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  function anchorFor(t) {
    var i = indexAt(lineStarts, t);
    return i >= 0 ? "t" + Math.floor(lineStarts[i]) : "";
  }

  function userIsScrolling() {
    return Date.now() - userScrolledAt < FOLLOW_PAUSE_MS;
  }

  function highlight(t, scrollMode) {
    var i = indexAt(lineStarts, t);
    if (i !== currentLine) {
      if (currentLine >= 0) {
        lines[currentLine].classList.remove("is-current");
        lines[currentLine].removeAttribute("aria-current");
      }
      currentLine = i;
      if (i >= 0) {
        lines[i].classList.add("is-current");
        lines[i].setAttribute("aria-current", "time");
      }
    }
    if (i >= 0 && scrollMode && !userIsScrolling()) {
      autoScrolledAt = Date.now();
      lines[i].scrollIntoView({ block: scrollMode });
    }
    var c = indexAt(chapterStarts, t);
    if (c !== currentChapter) {
      if (currentChapter >= 0) chapters[currentChapter].classList.remove("is-current");
      currentChapter = c;
      if (c >= 0) chapters[c].classList.add("is-current");
    }
  }

  function whenMetadata(fn) {
    if (audio.readyState >= 1) fn();
    else audio.addEventListener("loadedmetadata", fn, { once: true });
  }

  function playFrom(t) {
    whenMetadata(function () {
      audio.currentTime = t;
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* autoplay refused: stays seeked, paused */ });
    });
    userScrolledAt = 0;
    highlight(t, "nearest");
  }

  function momentUrl(t) {
    var url = new URL(window.location.href);
    url.search = "?t=" + Math.floor(t);
    url.hash = anchorFor(t);
    return url.toString();
  }

  // Any time link on the page plays from its moment instead of reloading it.
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var link = event.target.closest("a[data-t]");
    if (!link) return;
    var t = parseFloat(link.getAttribute("data-t"));
    if (!isFinite(t)) return;
    event.preventDefault();
    playFrom(t);
    history.replaceState(null, "", momentUrl(t));
  });

  audio.addEventListener("timeupdate", function () {
    highlight(audio.currentTime, audio.paused ? null : "nearest");
  });
  audio.addEventListener("seeked", function () { highlight(audio.currentTime, "nearest"); });

  // Stop following the spoken line for a few seconds whenever the reader scrolls on their own.
  function noteUserScroll() { userScrolledAt = Date.now(); }
  window.addEventListener("wheel", noteUserScroll, { passive: true });
  window.addEventListener("touchmove", noteUserScroll, { passive: true });
  window.addEventListener("keydown", function (event) {
    if (["PageUp", "PageDown", "ArrowUp", "ArrowDown", "Home", "End", " "].indexOf(event.key) >= 0) noteUserScroll();
  });
  window.addEventListener("scroll", function () {
    if (Date.now() - autoScrolledAt > 800) noteUserScroll();
  }, { passive: true });

  // ?t=SECONDS: open at that moment.
  var startAt = parseFloat(audio.getAttribute("data-start-at"));
  if (isFinite(startAt) && startAt >= 0) {
    highlight(startAt, null);
    playFrom(startAt);
  }

  // Share this moment: the link to the current time, copied when the browser lets us, and shown to select.
  var shareButton = document.getElementById("share-button");
  var sharePanel = document.getElementById("share-panel");
  var shareUrl = document.getElementById("share-url");
  var shareStatus = document.getElementById("share-status");
  var staticLink = document.getElementById("moment-link");
  if (shareButton && sharePanel && shareUrl) {
    shareButton.hidden = false;
    if (staticLink) staticLink.hidden = true;
    shareButton.addEventListener("click", function () {
      var url = momentUrl(audio.currentTime || 0);
      shareUrl.value = url;
      sharePanel.hidden = false;
      shareUrl.focus();
      shareUrl.select();
      var copied = navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(url).then(function () { return true; }, function () { return false; })
        : Promise.resolve(false);
      copied.then(function (ok) {
        shareStatus.textContent = ok ? "Link copied to the clipboard." : "Copy this link to share the moment.";
      });
    });
  }
})();
