// The episode page's player: every time link plays from its moment, the sentence and the word being spoken
// are highlighted and kept in view inside the transcript's own scroll box, ?t=SECONDS opens the page at that
// moment, −15 s / +15 s and a speed control sit beside the audio, a soundbite plays its moment and stops, and
// "Share this moment" gives a link to now.
// Words: a transcript with word timings has each word in a span with its start (.w[data-start]); a sentence
// without them has its words wrapped here, once, when it first becomes current (.w.w-est), their starts
// estimated by character position across the sentence's time, as archive/transcript_reading.py does.
// Narrow screens, where the transcript sits below the takeaways: the sticky bar shows the sentence being spoken
// as a live caption (#now-playing, its word highlighted; tap it to go to the transcript), so a takeaway, chapter
// or soundbite plays from its moment without moving the page.
// Everything here is an enhancement: without JavaScript the links still go to ?t=...#t... (every second of the
// transcript has its id) and the audio element starts there through its #t= media fragment.
(function () {
  "use strict";

  var audio = document.getElementById("player-audio");
  hideBrokenArtwork();
  if (!audio) return;

  var pane = document.getElementById("transcript");
  // The sticky bar's height, for the transcript that sticks below it on wide screens.
  function noteBarHeight() {
    if (bar) document.documentElement.style.setProperty("--bar-h", bar.offsetHeight + "px");
  }
  noteBarHeight();
  window.addEventListener("resize", noteBarHeight);
  if (pane) pane.classList.add("is-live");  // the player highlights; the static :target highlight steps aside
  var bar = document.getElementById("episode-bar");
  noteBarHeight();
  var sentences = Array.prototype.slice.call(document.querySelectorAll("#transcript .s[data-start]"));
  var starts = sentences.map(function (s) { return parseFloat(s.getAttribute("data-start")); });
  var chapters = Array.prototype.slice.call(document.querySelectorAll(".chapter[data-t]"));
  var chapterStarts = chapters.map(function (link) { return parseFloat(link.getAttribute("data-t")); });
  var current = sentences.indexOf(document.querySelector("#transcript .s.is-current"));
  var currentWord = null;
  var wordLists = [];  // per sentence index, made when it first becomes current: {spans, starts}
  var caption = document.getElementById("now-playing");
  var captionText = document.getElementById("now-playing-text");
  var captionWords = [];
  var captionWord = null;
  var currentChapter = -1;
  var stopAt = null;
  var playingBite = null;
  var userScrolledAt = 0;
  var autoScrolledAt = 0;
  var FOLLOW_PAUSE_MS = 4000;
  var smooth = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";

  function hideBrokenArtwork() {
    var art = document.querySelector(".episode__art");
    if (!art) return;
    function hide() { art.hidden = true; art.parentNode.classList.remove("episode__header--art"); }
    if (art.complete && art.naturalWidth === 0 && art.getAttribute("src")) hide();
    else art.addEventListener("error", hide);
  }

  // Index of the last start <= t (binary search over sorted start times), -1 before the first.
  function indexAt(list, t) {
    var lo = 0, hi = list.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (list[mid] <= t + 0.05) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  function anchorFor(t) {
    var second = Math.max(0, Math.floor(t));
    return document.getElementById("t" + second) ? "t" + second : "";
  }

  function userIsScrolling() {
    return Date.now() - userScrolledAt < FOLLOW_PAUSE_MS;
  }

  // Scroll the transcript box, never the page, and only when `el` has left the comfortable band (the box's
  // 12%..75%): then by just enough to bring it to a third of the way down. Returns how far it scrolled.
  function keepInPane(el, force) {
    if (!pane || !el) return 0;
    var box = pane.getBoundingClientRect();
    var rect = el.getBoundingClientRect();
    var top = rect.top - box.top;
    var height = pane.clientHeight;
    if (!force && top >= height * 0.12 && rect.bottom - box.top <= height * 0.75) return 0;
    var target = Math.max(0, Math.min(pane.scrollTop + top - height / 3, pane.scrollHeight - height));
    var delta = target - pane.scrollTop;
    if (Math.abs(delta) < 2) return 0;
    autoScrolledAt = Date.now();
    pane.scrollTo({ top: target, behavior: smooth });
    return delta;
  }

  // After a jump from outside the transcript (a takeaway, a chapter, a soundbite): the moment's sentence a
  // third of the way down its box, and the page moved only if that spot is not in the window's upper part.
  function reveal(t) {
    var i = indexAt(starts, t);
    if (i < 0 || !pane) return;
    var el = sentences[i];
    var paneDelta = keepInPane(el, false);
    var y = el.getBoundingClientRect().top - paneDelta;
    var top = bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
    var view = window.innerHeight;
    if (y >= top + 8 && y <= top + (view - top) * 0.66) return;
    autoScrolledAt = Date.now();
    window.scrollBy({ top: y - (top + (view - top) / 3), behavior: smooth });
  }

  // Sentence i's words and their starts: its timed words, else its words wrapped now with estimated starts.
  function wordsOf(i) {
    if (!wordLists[i]) {
      var spans = Array.prototype.slice.call(sentences[i].querySelectorAll(".w[data-start]"));
      if (!spans.length) spans = estimateWords(sentences[i]);
      wordLists[i] = { spans: spans, starts: spans.map(function (w) { return parseFloat(w.getAttribute("data-start")); }) };
    }
    return wordLists[i];
  }

  // Wrap each word of the sentence's text nodes (markup around them kept) in <span class="w w-est"
  // data-start>, the start interpolated across data-start..data-end by the word's character offset.
  function estimateWords(sentence) {
    var start = parseFloat(sentence.getAttribute("data-start"));
    var end = Math.max(start, parseFloat(sentence.getAttribute("data-end")));
    if (!isFinite(start) || !isFinite(end)) return [];
    var walker = document.createTreeWalker(sentence, NodeFilter.SHOW_TEXT);
    var nodes = [], pieces = [], total = -1;
    while (walker.nextNode()) nodes.push(walker.currentNode);
    nodes.forEach(function (node) {
      var parts = node.nodeValue.split(/(\s+)/);
      parts.forEach(function (part) { if (part && part.trim()) total += part.length + 1; });
      pieces.push(parts);
    });
    if (total <= 0) return [];
    var spans = [], offset = 0;
    nodes.forEach(function (node, n) {
      if (!node.nodeValue.trim()) return;
      var fragment = document.createDocumentFragment();
      pieces[n].forEach(function (part) {
        if (!part) return;
        if (!part.trim()) { fragment.appendChild(document.createTextNode(part)); return; }
        var span = document.createElement("span");
        span.className = "w w-est";
        span.setAttribute("data-start", (start + (end - start) * offset / total).toFixed(3));
        span.textContent = part;
        fragment.appendChild(span);
        spans.push(span);
        offset += part.length + 1;
      });
      node.parentNode.replaceChild(fragment, node);
    });
    return spans;
  }

  function highlightWord(i, t) {
    var k = -1, words = null;
    if (i >= 0) {
      words = wordsOf(i);
      k = indexAt(words.starts, t);
    }
    var word = k >= 0 ? words.spans[k] : null;
    if (word !== currentWord) {
      if (currentWord) currentWord.classList.remove("is-current");
      currentWord = word;
      if (word) word.classList.add("is-current");
    }
    var shown = k >= 0 && k < captionWords.length ? captionWords[k] : null;
    if (shown !== captionWord) {
      if (captionWord) captionWord.classList.remove("is-current");
      captionWord = shown;
      if (shown) {
        shown.classList.add("is-current");
        // the caption shows two lines: keep the word's line in them (the line before it too, when it can)
        var top = Math.max(0, shown.offsetTop + shown.offsetHeight - captionText.clientHeight);
        if (Math.abs(captionText.scrollTop - top) > 1) captionText.scrollTo({ top: top, behavior: smooth });
      }
    }
  }

  // The caption in the sticky bar: a copy of the sentence (its words already wrapped), without its ids.
  function showCaption(i) {
    if (!caption || !captionText) return;
    captionWords = [];
    captionWord = null;
    captionText.textContent = "";
    caption.hidden = i < 0;
    if (i < 0) return;
    wordsOf(i);
    var copy = sentences[i].cloneNode(true);
    Array.prototype.forEach.call(copy.querySelectorAll("[id]"), function (el) {
      if (el.tagName === "A" && !el.textContent) el.remove(); else el.removeAttribute("id");
    });
    Array.prototype.forEach.call(copy.querySelectorAll(".is-current"), function (el) { el.classList.remove("is-current"); });
    while (copy.firstChild) captionText.appendChild(copy.firstChild);
    captionText.scrollTop = 0;
    captionWords = Array.prototype.slice.call(captionText.querySelectorAll(".w[data-start]"));
  }

  function captionShown() {
    return !!caption && !caption.hidden && caption.offsetParent !== null;
  }

  function highlight(t, follow) {
    var i = indexAt(starts, t);
    if (i !== current) {
      if (current >= 0) {
        sentences[current].classList.remove("is-current");
        sentences[current].removeAttribute("aria-current");
        var oldPara = sentences[current].closest(".para");
        if (oldPara) oldPara.classList.remove("is-current");
      }
      current = i;
      if (i >= 0) {
        sentences[i].classList.add("is-current");
        sentences[i].setAttribute("aria-current", "time");
        var para = sentences[i].closest(".para");
        if (para) para.classList.add("is-current");
      }
      showCaption(i);
    }
    highlightWord(i, t);
    if (i >= 0 && follow && !userIsScrolling()) keepInPane(currentWord || sentences[i], false);
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

  function playFrom(t, end) {
    stopAt = end || null;
    whenMetadata(function () {
      audio.currentTime = t;
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* autoplay refused: stays seeked, paused */ });
    });
    userScrolledAt = 0;
    highlight(t, false);
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
    var end = parseFloat(link.getAttribute("data-end"));
    if (playingBite) playingBite.classList.remove("is-playing");
    playingBite = isFinite(end) ? link.closest(".soundbite") : null;
    if (playingBite) playingBite.classList.add("is-playing");
    playFrom(t, isFinite(end) ? end : null);
    // the caption shows what is said: the reader stays where they are, the transcript's box follows unseen
    if ((pane && pane.contains(link)) || captionShown()) keepInPane(sentences[indexAt(starts, t)], false);
    else reveal(t);
    history.replaceState(null, "", momentUrl(t));
  });

  audio.addEventListener("timeupdate", function () {
    if (stopAt !== null && audio.currentTime >= stopAt) {
      stopAt = null;
      audio.pause();
      if (playingBite) { playingBite.classList.remove("is-playing"); playingBite = null; }
    }
    highlight(audio.currentTime, !audio.paused);
  });
  audio.addEventListener("seeked", function () { highlight(audio.currentTime, true); });
  // Between timeupdates (four a second) the word moves on with the frames, while playing (the transcript's box
  // follows at the timeupdates).
  var frame = 0;
  function onFrame() {
    frame = 0;
    if (audio.paused) return;
    highlight(audio.currentTime, false);
    frame = window.requestAnimationFrame(onFrame);
  }
  audio.addEventListener("play", function () { if (!frame) frame = window.requestAnimationFrame(onFrame); });

  // The caption goes to its sentence in the transcript (the reader asked: the page moves, focus goes there).
  if (caption) {
    caption.addEventListener("click", function (event) {
      if (current < 0 || !pane) return;
      event.preventDefault();
      userScrolledAt = 0;
      reveal(parseFloat(sentences[current].getAttribute("data-start")));
      pane.focus({ preventScroll: true });
    });
  }

  // −15 s / +15 s and the speed (remembered for the next episode when the browser allows).
  var controls = document.getElementById("player-controls");
  var speed = document.getElementById("player-speed");
  if (controls) {
    controls.hidden = false;
    controls.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-skip]");
      if (!button) return;
      var skip = parseFloat(button.getAttribute("data-skip"));
      whenMetadata(function () {
        var end = isFinite(audio.duration) ? audio.duration : Infinity;
        audio.currentTime = Math.max(0, Math.min(audio.currentTime + skip, end));
      });
      stopAt = null;
    });
  }
  if (speed) {
    var saved = null;
    try { saved = window.localStorage.getItem("podarchive.rate"); } catch (e) { /* storage refused */ }
    if (saved && speed.querySelector('option[value="' + saved + '"]')) speed.value = saved;
    audio.playbackRate = parseFloat(speed.value) || 1;
    speed.addEventListener("change", function () {
      audio.playbackRate = parseFloat(speed.value) || 1;
      try { window.localStorage.setItem("podarchive.rate", speed.value); } catch (e) { /* storage refused */ }
    });
    audio.addEventListener("loadedmetadata", function () { audio.playbackRate = parseFloat(speed.value) || 1; });
  }

  // Stop following the spoken sentence for a few seconds whenever the reader scrolls on their own.
  function noteUserScroll() { userScrolledAt = Date.now(); }
  window.addEventListener("wheel", noteUserScroll, { passive: true });
  window.addEventListener("touchmove", noteUserScroll, { passive: true });
  window.addEventListener("keydown", function (event) {
    if (["PageUp", "PageDown", "ArrowUp", "ArrowDown", "Home", "End", " "].indexOf(event.key) >= 0) noteUserScroll();
  });
  if (pane) {
    pane.addEventListener("scroll", function () {
      if (Date.now() - autoScrolledAt > 1200) noteUserScroll();
    }, { passive: true });
  }

  if (current >= 0) showCaption(current);  // the sentence the server marked (?t=)

  // ?t=SECONDS: open at that moment (the #t fragment has already brought its sentence into view).
  var startAt = parseFloat(audio.getAttribute("data-start-at"));
  if (isFinite(startAt) && startAt >= 0) {
    highlight(startAt, false);
    if (!window.location.hash) keepInPane(sentences[indexAt(starts, startAt)], false);
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
