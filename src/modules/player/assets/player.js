// Spool watch page: hls.js for the adaptive ladder when it is ready (served by Spool from the
// hls.js package), native HLS where the browser has it and MSE is missing, the original file
// (byte ranges) otherwise. Quality selector, poster, storyboard previews while scrubbing.
// Plain browser JavaScript, no build step. `?engine=hls.js|native|direct` forces an engine;
// `?start=<seconds>` starts there (the whole video, so a viewer can still scrub back). The
// embed page (/embed/:id) uses the same player without the details below it.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const data = JSON.parse($("video-data").textContent);
  const params = new URLSearchParams(location.search);
  const forced = params.get("engine");
  const overlay = $("overlay");
  const quality = $("quality");
  const icons = JSON.parse($("player-icons").textContent);
  const player = (window.spoolPlayer = { engine: null, hls: null, video, data, storyboard: [], start: startTime(params.get("start")) });

  /** `?start=`: plain non-negative seconds, else none (a bad link still plays, from 0). */
  function startTime(value) {
    if (value === null || !/^\d+(\.\d+)?$/.test(value)) return 0;
    const seconds = Number(value);
    return data.duration ? Math.min(seconds, Math.max(0, data.duration - 0.1)) : seconds;
  }

  function formatTime(seconds) {
    if (!isFinite(seconds) || seconds < 0) seconds = 0;
    const t = Math.floor(seconds);
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    const s = String(t % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function showOverlay(text) {
    overlay.textContent = text;
    overlay.hidden = !text;
  }

  // --- engine ---

  function chooseEngine() {
    const ladder = data.hls.status === "ready" && data.hls.masterUrl;
    const hlsJs = !!(window.Hls && window.Hls.isSupported());
    const native = video.canPlayType("application/vnd.apple.mpegurl") !== "";
    if (forced === "direct" || !ladder) return "direct";
    if (forced === "native") return native ? "native" : "direct";
    if (forced === "hls.js") return hlsJs ? "hls.js" : "direct";
    if (hlsJs) return "hls.js";
    if (native) return "native";
    return "direct";
  }

  function setEngine(name) {
    player.engine = name;
    if ($("engine")) $("engine").textContent = { "hls.js": "HLS (hls.js, adaptive)", native: "HLS (native)", direct: "original file (byte ranges)" }[name];
    document.documentElement.dataset.engine = name;
  }

  function playDirect() {
    setEngine("direct");
    if (video.canPlayType(data.contentType) === "" && data.contentType.startsWith("video/")) {
      showOverlay(`This browser may not play ${data.contentType}. Try downloading the original.`);
    }
    video.src = data.streamUrl;
  }

  function playNative() {
    setEngine("native");
    video.src = data.hls.masterUrl;
  }

  function levelLabel(level) {
    const kbps = Math.round((level.averageBitrate || level.bitrate) / 1000);
    return `${level.height}p · ${kbps} kbps`;
  }

  function playHlsJs() {
    setEngine("hls.js");
    const Hls = window.Hls;
    const hls = new Hls({ capLevelToPlayerSize: false, maxBufferLength: 30, enableWorker: true, startPosition: player.start > 0 ? player.start : -1 });
    player.hls = hls;
    let mediaRecoveries = 0;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      quality.textContent = "";
      const auto = document.createElement("option");
      auto.value = "-1";
      auto.textContent = "Auto";
      quality.append(auto);
      hls.levels
        .map((level, index) => ({ level, index }))
        .sort((a, b) => b.level.height - a.level.height || b.level.bitrate - a.level.bitrate)
        .forEach(({ level, index }) => {
          const option = document.createElement("option");
          option.value = String(index);
          option.textContent = levelLabel(level);
          quality.append(option);
        });
      quality.value = "-1";
      quality.hidden = hls.levels.length < 2;
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_event, info) => {
      const level = hls.levels[info.level];
      if ($("level")) $("level").textContent = level ? `${level.height}p${hls.autoLevelEnabled ? " (auto)" : ""}` : "";
    });
    hls.on(Hls.Events.ERROR, (_event, info) => {
      if (!info.fatal) return;
      if (info.type === Hls.ErrorTypes.NETWORK_ERROR) {
        hls.startLoad();
      } else if (info.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries++ < 2) {
        hls.recoverMediaError();
      } else {
        // The ladder cannot play here: the original file can.
        console.warn("hls.js fatal error, falling back to the original file", info);
        hls.destroy();
        player.hls = null;
        quality.hidden = true;
        playDirect();
      }
    });
    hls.loadSource(data.hls.masterUrl);
    hls.attachMedia(video);
  }

  /** Switches the HLS rendition: -1 for automatic, else a level index (immediate switch). */
  player.setQuality = function (index) {
    if (!player.hls) return;
    player.hls.currentLevel = index;
    quality.value = String(index);
  };
  quality.addEventListener("change", () => player.setQuality(Number(quality.value)));

  // --- controls ---

  const play = $("play");
  const scrub = $("scrub");
  const played = $("played");
  const buffered = $("buffered");
  const time = $("time");
  const mute = $("mute");

  function togglePlay() {
    if (video.paused || video.ended) video.play().catch((e) => showOverlay(`Playback failed: ${e.message}`));
    else video.pause();
  }
  play.addEventListener("click", togglePlay);
  video.addEventListener("click", togglePlay);
  video.addEventListener("play", () => {
    play.innerHTML = icons.pause;
    play.setAttribute("aria-label", "Pause");
  });
  video.addEventListener("pause", () => {
    play.innerHTML = icons.play;
    play.setAttribute("aria-label", "Play");
  });
  video.addEventListener("playing", () => showOverlay(""));
  video.addEventListener("error", () => {
    const error = video.error;
    if (player.engine === "native" && data.hls.status === "ready") return playDirect();
    showOverlay(`The video cannot be played${error && error.message ? `: ${error.message}` : ""}`);
  });

  function duration() {
    return isFinite(video.duration) && video.duration > 0 ? video.duration : data.duration || 0;
  }

  function render() {
    const d = duration();
    const t = video.currentTime;
    played.style.width = d ? `${Math.min(100, (t / d) * 100)}%` : "0";
    let end = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= t + 0.5) end = Math.max(end, video.buffered.end(i));
    }
    buffered.style.width = d ? `${Math.min(100, (end / d) * 100)}%` : "0";
    time.textContent = `${formatTime(t)} / ${formatTime(d)}`;
    scrub.setAttribute("aria-valuemax", String(Math.round(d)));
    scrub.setAttribute("aria-valuenow", String(Math.round(t)));
  }
  for (const e of ["timeupdate", "progress", "durationchange", "seeked", "loadedmetadata"]) video.addEventListener(e, render);

  // The original file (and native HLS) start at `start` once the length is known; hls.js is
  // told at creation (startPosition), so it fetches that segment first.
  video.addEventListener(
    "loadedmetadata",
    () => {
      if (player.start > 0 && player.engine !== "hls.js") video.currentTime = Math.min(player.start, duration());
    },
    { once: true },
  );

  // --- share from the current time ---

  const share = $("share");
  const shareTime = $("share-time");
  const shareLink = $("share-link");

  /**
   * The watch page at `seconds` (tenths, rounded down), with the token the viewer came with. Not
   * the one a signed-in owner's page plays with: the server made that one for this page, and a
   * copied link would give anyone six hours of a private video (a token for others is minted on
   * purpose, as the library says).
   */
  player.shareUrl = function (seconds) {
    const url = new URL(`/watch/${encodeURIComponent(data.id)}`, location.origin);
    const token = new URLSearchParams(location.search).get("token");
    if (token) url.searchParams.set("token", token);
    const start = Math.floor(Math.max(0, seconds) * 10) / 10;
    if (start > 0) url.searchParams.set("start", String(start));
    return url.href;
  };
  if (share) {
    const label = () => (shareTime.textContent = formatTime(video.currentTime));
    video.addEventListener("timeupdate", label);
    video.addEventListener("seeked", label);
    share.addEventListener("click", async () => {
      const link = player.shareUrl(video.currentTime);
      // Set first, synchronously: tests read it right after the click (as library.js's copy).
      window.spoolShared = link;
      shareLink.value = link;
      shareLink.hidden = false;
      shareLink.select();
      try {
        await navigator.clipboard.writeText(link);
      } catch {
        // No clipboard API (plain http, permissions): the selected field lets the viewer copy it.
      }
    });
  }

  mute.addEventListener("click", () => {
    video.muted = !video.muted;
  });
  video.addEventListener("volumechange", () => {
    mute.innerHTML = video.muted ? icons.muted : icons.volume;
    mute.setAttribute("aria-label", video.muted ? "Unmute" : "Mute");
  });
  $("fullscreen").addEventListener("click", () => {
    const box = $("player");
    if (document.fullscreenElement) document.exitFullscreen();
    else if (box.requestFullscreen) box.requestFullscreen();
    else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
  });

  // --- scrubbing with storyboard previews ---

  const preview = $("preview");
  const frame = $("preview-frame");
  const previewTime = $("preview-time");
  let dragging = false;

  function timeAt(clientX) {
    const rect = scrub.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (clientX - rect.left) / rect.width));
    return { seconds: fraction * duration(), x: fraction * rect.width, width: rect.width };
  }

  function cueAt(seconds) {
    const cues = player.storyboard;
    let lo = 0;
    let hi = cues.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (seconds < cues[mid].start) hi = mid - 1;
      else if (seconds >= cues[mid].end) lo = mid + 1;
      else return cues[mid];
    }
    return cues[cues.length - 1] && seconds >= cues[cues.length - 1].start ? cues[cues.length - 1] : null;
  }

  function showPreview(clientX) {
    const at = timeAt(clientX);
    previewTime.textContent = formatTime(at.seconds);
    const cue = cueAt(at.seconds);
    if (cue) {
      frame.hidden = false;
      frame.style.width = `${cue.w}px`;
      frame.style.height = `${cue.h}px`;
      frame.style.backgroundImage = `url("${cue.url}")`;
      frame.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    } else {
      frame.hidden = true;
    }
    const half = cue ? cue.w / 2 + 2 : 24;
    preview.style.left = `${Math.min(at.width - half, Math.max(half, at.x))}px`;
    preview.hidden = false;
    return at.seconds;
  }

  scrub.addEventListener("pointermove", (e) => {
    const seconds = showPreview(e.clientX);
    if (dragging) played.style.width = `${(seconds / (duration() || 1)) * 100}%`;
  });
  scrub.addEventListener("pointerleave", () => {
    if (!dragging) preview.hidden = true;
  });
  scrub.addEventListener("pointerdown", (e) => {
    dragging = true;
    scrub.setPointerCapture(e.pointerId);
    showPreview(e.clientX);
  });
  scrub.addEventListener("pointerup", (e) => {
    if (!dragging) return;
    dragging = false;
    video.currentTime = timeAt(e.clientX).seconds;
    preview.hidden = true;
  });
  scrub.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") video.currentTime = Math.min(duration(), video.currentTime + 5);
    else if (e.key === "ArrowLeft") video.currentTime = Math.max(0, video.currentTime - 5);
    else return;
    e.preventDefault();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === " " && e.target === document.body) {
      e.preventDefault();
      togglePlay();
    }
  });

  /** Parses the storyboard WebVTT: cues whose text is `sheet.jpg#xywh=x,y,w,h`. */
  function parseStoryboard(text, base) {
    const cues = [];
    const stamp = (s) => {
      const parts = s.trim().split(":").map(Number);
      return parts.reduce((acc, p) => acc * 60 + p, 0);
    };
    const blocks = text.replace(/\r/g, "").split(/\n\n+/);
    for (const block of blocks) {
      const lines = block.split("\n").filter(Boolean);
      const timing = lines.findIndex((l) => l.includes("-->"));
      if (timing < 0 || !lines[timing + 1]) continue;
      const [from, to] = lines[timing].split("-->");
      const match = lines[timing + 1].match(/^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/);
      if (!match) continue;
      cues.push({ start: stamp(from), end: stamp(to.split(" ").filter(Boolean)[0]), url: new URL(match[1], base).href, x: +match[2], y: +match[3], w: +match[4], h: +match[5] });
    }
    return cues;
  }

  if (data.hls.storyboardUrl) {
    const url = new URL(data.hls.storyboardUrl, location.href);
    fetch(url)
      .then((r) => (r.ok ? r.text() : ""))
      .then((text) => {
        player.storyboard = text ? parseStoryboard(text, url) : [];
        // Warm the first sheet so the first hover shows a frame at once.
        if (player.storyboard[0]) new Image().src = player.storyboard[0].url;
      })
      .catch(() => {});
  }

  // --- start ---

  if (data.status !== "ready") {
    showOverlay(data.status === "failed" ? `This video failed to process: ${data.error || "unknown error"}` : "This video is still processing…");
    return;
  }
  const engine = chooseEngine();
  if (engine === "hls.js") playHlsJs();
  else if (engine === "native") playNative();
  else playDirect();
  render();
  if (params.get("autoplay") === "1") {
    video.muted = true;
    video.play().catch(() => {});
  }
})();
