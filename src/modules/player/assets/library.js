// Spool library page: upload with progress, then follow processing and HLS transcoding live
// (Server-Sent Events from /api/videos/:id/events). Plain browser JavaScript, no build step.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);

  // --- session: sign in with the key (the page without a session is only this form) ---

  const signIn = $("signin-form");
  if (signIn) {
    signIn.addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = $("signin-message");
      message.textContent = "";
      $("signin-submit").disabled = true;
      try {
        const response = await fetch("/api/session", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ key: $("signin-key").value.trim() }),
        });
        if (response.status === 204) return location.reload();
        const body = await response.json().catch(() => null);
        message.textContent = (body && body.error && body.error.message) || `Sign-in failed (HTTP ${response.status})`;
      } catch {
        message.textContent = "Sign-in failed: network error";
      }
      $("signin-submit").disabled = false;
    });
    return;
  }

  const signOut = $("sign-out");
  if (signOut) {
    signOut.addEventListener("click", async () => {
      await fetch("/api/session", { method: "DELETE" }).catch(() => {});
      location.reload();
    });
  }

  const form = $("upload-form");
  const fileInput = $("upload-file");
  const list = $("library");

  function formatDuration(seconds) {
    if (seconds == null || !isFinite(seconds)) return "";
    const total = Math.round(seconds);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function badge(video) {
    if (video.status === "failed") return ["Failed", "bad"];
    if (video.status !== "ready") return [video.status === "uploading" ? "Uploading" : "Processing", "busy"];
    switch (video.hls.status) {
      case "ready": return ["HLS", "good"];
      case "processing": return [`Transcoding ${video.hls.progress}%`, "busy"];
      case "queued": return ["Queued", "busy"];
      case "failed": return ["MP4 only", "warn"];
      default: return ["MP4", "plain"];
    }
  }

  function cardFor(video) {
    let li = list.querySelector(`li[data-id="${CSS.escape(video.id)}"]`);
    if (!li) {
      li = document.createElement("li");
      li.className = "card";
      li.dataset.id = video.id;
      const a = document.createElement("a");
      a.href = `/watch/${encodeURIComponent(video.id)}`;
      const thumb = document.createElement("div");
      thumb.className = "thumb";
      const meta = document.createElement("div");
      meta.className = "meta";
      const title = document.createElement("span");
      title.className = "title";
      const b = document.createElement("span");
      b.dataset.badge = "";
      meta.append(title, b);
      a.append(thumb, meta);
      li.append(a);
      list.prepend(li);
      $("library-empty").hidden = true;
    }
    return li;
  }

  function renderCard(video) {
    const li = cardFor(video);
    li.querySelector(".title").textContent = video.title;
    const [text, kind] = badge(video);
    const b = li.querySelector("[data-badge]");
    b.textContent = text;
    b.className = `badge ${kind}`;
    const thumb = li.querySelector(".thumb");
    if (video.thumbnailUrl && !thumb.querySelector("img")) {
      thumb.textContent = "";
      const img = document.createElement("img");
      img.src = `${video.thumbnailUrl}?width=320`;
      img.alt = "";
      thumb.append(img);
      const d = formatDuration(video.duration);
      if (d) {
        const span = document.createElement("span");
        span.className = "duration";
        span.textContent = d;
        thumb.append(span);
      }
    } else if (!video.thumbnailUrl && !thumb.firstChild) {
      const none = document.createElement("div");
      none.className = "noposter";
      thumb.append(none);
    }
  }

  const following = new Map();

  /** Follows a video's events until it is settled (HLS ready, failed or skipped). */
  function follow(id, onVideo) {
    if (following.has(id)) following.get(id).close();
    const source = new EventSource(`/api/videos/${encodeURIComponent(id)}/events`);
    following.set(id, source);
    const handle = (event) => {
      const video = JSON.parse(event.data);
      renderCard(video);
      if (onVideo) onVideo(video);
      const settled = video.status === "failed" || (video.status === "ready" && ["ready", "failed", "skipped"].includes(video.hls.status));
      if (settled) {
        source.close();
        following.delete(id);
      }
    };
    source.addEventListener("status", handle);
    source.addEventListener("progress", handle);
    source.addEventListener("deleted", () => {
      source.close();
      following.delete(id);
      list.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.remove();
    });
    return source;
  }

  // Videos still processing when the page loaded.
  for (const li of list.querySelectorAll("li.card")) {
    const b = li.querySelector("[data-badge]");
    if (b && b.classList.contains("busy")) follow(li.dataset.id);
  }

  // --- upload ---

  const status = $("upload-status");
  const uploadBar = $("upload-progress");
  const uploadPercent = $("upload-percent");
  const state = $("upload-state");
  const hlsBar = $("hls-progress");
  const hlsPercent = $("hls-percent");
  const message = $("upload-message");
  const watch = $("upload-watch");
  const submit = $("upload-submit");

  fileInput.addEventListener("change", () => {
    $("upload-file-name").textContent = fileInput.files[0] ? fileInput.files[0].name : "Choose a file…";
  });

  function say(text, error) {
    message.textContent = text;
    message.classList.toggle("error", !!error);
  }

  function showVideo(video) {
    const labels = { uploading: "uploading", processing: "processing (probe, faststart, poster)…", ready: "ready", failed: "failed" };
    state.textContent = labels[video.status] || video.status;
    if (video.status === "failed") {
      say(video.error || "Processing failed", true);
      submit.disabled = false;
      return;
    }
    if (video.status === "ready") {
      watch.href = `/watch/${encodeURIComponent(video.id)}`;
      watch.hidden = false;
    }
    const hls = video.hls;
    hlsBar.value = hls.status === "ready" ? 100 : hls.progress;
    switch (hls.status) {
      case "none": hlsPercent.textContent = "–"; break;
      case "queued": hlsPercent.textContent = "queued"; break;
      case "processing": hlsPercent.textContent = `${hls.progress}%`; break;
      case "ready": hlsPercent.textContent = "ready"; break;
      case "skipped": hlsPercent.textContent = "n/a"; break;
      case "failed": hlsPercent.textContent = "failed"; break;
    }
    if (hls.status === "ready") {
      say("Ready: adaptive streaming (HLS) is available.");
      submit.disabled = false;
    } else if (hls.status === "failed") {
      say(`Transcoding failed (${hls.error || "unknown error"}); the original still plays.`, true);
      submit.disabled = false;
    } else if (hls.status === "skipped") {
      say(hls.error || "No adaptive streaming for this file.");
      submit.disabled = false;
    } else if (video.status === "ready") {
      say(hls.error ? `Playable now; ${hls.error}` : "Playable now; building the adaptive ladder…");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    const data = new FormData();
    const title = $("upload-title").value.trim();
    if (title) data.append("title", title);
    const playback = $("upload-playback").value;
    if (playback) data.append("playback", playback);
    data.append("file", file, file.name);

    status.hidden = false;
    watch.hidden = true;
    submit.disabled = true;
    uploadBar.value = 0;
    uploadPercent.textContent = "0%";
    hlsBar.value = 0;
    hlsPercent.textContent = "–";
    state.textContent = "waiting";
    say("Uploading…");

    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/videos");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.floor((e.loaded / e.total) * 100);
      uploadBar.value = percent;
      uploadPercent.textContent = `${percent}%`;
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (xhr.status !== 201 || !body || !body.id) {
        say((body && body.error && body.error.message) || `Upload failed (HTTP ${xhr.status})`, true);
        submit.disabled = false;
        return;
      }
      uploadBar.value = 100;
      uploadPercent.textContent = "100%";
      renderCard(body);
      showVideo(body);
      follow(body.id, showVideo);
      form.reset();
      $("upload-file-name").textContent = "Choose a file…";
    });
    xhr.addEventListener("error", () => {
      say("The upload failed: network error", true);
      submit.disabled = false;
    });
    xhr.send(data);
  });
})();
