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
    if (video.status !== "ready") {
      const labels = { uploading: "Uploading", importing: "Importing", processing: "Processing" };
      return [labels[video.status] || video.status, "busy"];
    }
    switch (video.hls.status) {
      case "ready": return ["HLS", "good"];
      case "processing": return [`Transcoding ${video.hls.progress}%`, "busy"];
      case "queued": return ["Queued", "busy"];
      case "failed": return ["MP4 only", "warn"];
      default: return ["MP4", "plain"];
    }
  }

  function formatBytes(n) {
    if (n < 1000) return `${n} B`;
    const units = ["kB", "MB", "GB", "TB"];
    let v = n / 1000;
    let u = 0;
    while (v >= 999.95 && u < units.length - 1) { v /= 1000; u++; }
    return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
  }

  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) if (child != null) node.append(child);
    return node;
  };

  const videos = new Map();
  for (const v of JSON.parse(($("library-data") || {}).textContent || "[]")) videos.set(v.id, v);
  /** Videos that came from a URL (a failed one can be imported again): from the page, or seen importing. */
  const imported = new Set(JSON.parse(($("library-imports") || {}).textContent || "[]"));

  function cardOf(id) {
    return list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  /** (Re)draws a video's card from its JSON, with its actions; inserts it when new. */
  function renderCard(video) {
    videos.set(video.id, video);
    if (video.status === "importing") imported.add(video.id);
    let li = cardOf(video.id);
    if (li && li.querySelector("input.rename")) return; // being renamed: do not disturb
    if (!li) {
      li = el("li", { className: "card" });
      li.dataset.id = video.id;
      list.prepend(li);
      $("library-empty").hidden = true;
    }
    const [text, kind] = badge(video);
    const thumb = el("div", { className: "thumb" });
    if (video.thumbnailUrl) {
      thumb.append(el("img", { src: `${video.thumbnailUrl}?width=320`, alt: "", loading: "lazy" }));
      const d = formatDuration(video.duration);
      if (d) thumb.append(el("span", { className: "duration", textContent: d }));
    } else if (video.status === "failed") {
      thumb.append(el("div", { className: "failedposter", textContent: "Failed" }));
    } else {
      thumb.append(el("div", { className: "noposter" }));
    }
    const progress = el("progress", { className: "import-progress", max: 100, hidden: true });
    thumb.append(progress);
    const b = el("span", { className: `badge ${kind}`, textContent: text });
    b.dataset.badge = "";
    const title = el("span", { className: "title", textContent: video.title, title: video.title });
    const link = el("a", { href: `/watch/${encodeURIComponent(video.id)}` }, thumb, el("div", { className: "meta" }, title, b));
    const actions = el("div", { className: "actions" });
    const action = (name, label, hint) => {
      const button = el("button", { type: "button", className: `action ${name}`, textContent: label, title: hint || label });
      button.dataset.action = name;
      actions.append(button);
      return button;
    };
    action("rename", "Rename", "Change the title");
    if (video.status === "ready") {
      action("copy-link", "Copy link", "Copy the watch page's address");
      const frame = action("copy-iframe", "Embed", "Copy <iframe> code: Spool's player on another site");
      const embed = action("copy-embed", "<video>", "Copy <video> code: the browser's own player on another site");
      if (video.playback === "signed") {
        for (const button of [frame, embed]) {
          button.disabled = true;
          button.title = "A signed video plays only with a token: mint one (POST /api/videos/{id}/tokens) for an embed";
        }
      }
    }
    if (video.status === "failed" && imported.has(video.id)) action("retry-import", "Retry", "Download it again from its URL");
    if (video.status === "ready" && video.hls.status === "failed") action("retry-hls", "Retry HLS", video.hls.error || "Build the adaptive ladder again");
    action("delete", "Delete", "Delete the video and its files");
    const children = [link];
    if (video.status === "failed") children.push(el("p", { className: "error", textContent: video.error || "Processing failed" }));
    children.push(actions);
    li.className = `card${video.status === "failed" ? " failed" : ""}`;
    li.replaceChildren(...children);
  }

  function removeCard(id) {
    videos.delete(id);
    cardOf(id)?.remove();
    $("library-empty").hidden = list.children.length > 0;
  }

  function showImportProgress(p) {
    const li = cardOf(p.id);
    if (!li) return;
    const bar = li.querySelector(".import-progress");
    const b = li.querySelector("[data-badge]");
    if (p.total) {
      bar.hidden = false;
      bar.value = Math.floor((p.bytes / p.total) * 100);
    }
    if (b) b.textContent = p.total ? `Importing ${Math.floor((p.bytes / p.total) * 100)}%` : `Importing ${formatBytes(p.bytes)}`;
  }

  for (const v of videos.values()) renderCard(v);

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
      removeCard(id);
    });
    return source;
  }

  // The whole library, live: videos added or changed by anyone (another tab, the API, the CLI).
  if (window.EventSource) {
    const feed = new EventSource("/api/videos/events");
    feed.addEventListener("video", (e) => renderCard(JSON.parse(e.data)));
    feed.addEventListener("deleted", (e) => removeCard(JSON.parse(e.data).id));
    feed.addEventListener("progress", (e) => showImportProgress(JSON.parse(e.data)));
  }

  // --- per-video actions ---

  const toast = el("div", { className: "toast", role: "status", hidden: true });
  document.body.append(toast);
  let toastTimer;
  function notify(text, error) {
    toast.textContent = text;
    toast.classList.toggle("error", !!error);
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (toast.hidden = true), 4000);
  }

  async function copy(text, what) {
    // Set first, synchronously: tests read it right after the click.
    window.spoolLastCopied = text;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without the clipboard API (plain http, permissions): the old way.
      const area = el("textarea", { value: text });
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    notify(`${what} copied`);
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (response.ok) return response.status === 204 ? null : response.json();
    const json = await response.json().catch(() => null);
    throw new Error((json && json.error && json.error.message) || `HTTP ${response.status}`);
  }

  function startRename(li, video) {
    const title = li.querySelector(".title");
    const input = el("input", { type: "text", className: "rename", value: video.title, maxLength: 500 });
    input.setAttribute("aria-label", "New title");
    title.replaceWith(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const next = input.value.trim();
      input.remove();
      if (save && next && next !== video.title) {
        try {
          renderCard(await api("PATCH", `/api/videos/${encodeURIComponent(video.id)}`, { title: next }));
          return;
        } catch (error) {
          notify(`Rename failed: ${error.message}`, true);
        }
      }
      renderCard(video);
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); finish(true); }
      if (e.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
    // Typing in the title must not follow the card's link.
    input.addEventListener("click", (e) => e.preventDefault());
  }

  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li.card");
    const video = videos.get(li.dataset.id);
    if (!video) return;
    const origin = location.origin;
    switch (button.dataset.action) {
      case "rename":
        return startRename(li, video);
      case "copy-link":
        return copy(`${origin}/watch/${video.id}`, "Watch link");
      case "copy-iframe":
        return copy(`<iframe src="${origin}/embed/${video.id}" width="640" height="360" style="border:0" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen title="${video.title.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;")}"></iframe>`, "Embed code");
      case "copy-embed":
        return copy(`<video src="${origin}${video.streamUrl}" controls playsinline preload="metadata"${video.thumbnailUrl ? ` poster="${origin}${video.thumbnailUrl}"` : ""}></video>`, "Embed code");
      case "retry-import":
        try {
          renderCard(await api("POST", `/api/videos/${encodeURIComponent(video.id)}/retry`));
          follow(video.id);
        } catch (error) {
          notify(`Retry failed: ${error.message}`, true);
        }
        return;
      case "retry-hls":
        try {
          renderCard(await api("POST", `/api/videos/${encodeURIComponent(video.id)}/hls/retry`));
          follow(video.id);
        } catch (error) {
          notify(`Retry failed: ${error.message}`, true);
        }
        return;
      case "delete":
        if (!confirm(`Delete “${video.title}” and all its files? This cannot be undone.`)) return;
        try {
          await api("DELETE", `/api/videos/${encodeURIComponent(video.id)}`);
          removeCard(video.id);
          notify("Deleted");
        } catch (error) {
          notify(`Delete failed: ${error.message}`, true);
        }
    }
  });

  // Videos still processing when the page loaded.
  for (const v of videos.values()) if (badge(v)[1] === "busy") follow(v.id);

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
    const labels = { uploading: "uploading", importing: "downloading", processing: "processing (probe, faststart, poster)…", ready: "ready", failed: "failed" };
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

  function resetJob() {
    status.hidden = false;
    watch.hidden = true;
    submit.disabled = true;
    uploadBar.value = 0;
    uploadPercent.textContent = "0%";
    hlsBar.value = 0;
    hlsPercent.textContent = "–";
    state.textContent = "waiting";
  }

  function uploaded(body) {
    uploadBar.value = 100;
    uploadPercent.textContent = "100%";
    renderCard(body);
    showVideo(body);
    follow(body.id, showVideo);
    form.reset();
    $("upload-file-name").textContent = "Choose a file…";
  }

  function showUploadProgress(sent, total) {
    const percent = total ? Math.floor((sent / total) * 100) : 0;
    uploadBar.value = percent;
    uploadPercent.textContent = `${percent}%`;
  }

  /** Without tus-js-client (not installed): one multipart POST, as before. */
  function uploadMultipart(file, title, playback) {
    const data = new FormData();
    if (title) data.append("title", title);
    if (playback) data.append("playback", playback);
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/videos");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && showUploadProgress(e.loaded, e.total));
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (xhr.status !== 201 || !body || !body.id) {
        say((body && body.error && body.error.message) || `Upload failed (HTTP ${xhr.status})`, true);
        submit.disabled = false;
        return;
      }
      uploaded(body);
    });
    xhr.addEventListener("error", () => {
      say("The upload failed: network error", true);
      submit.disabled = false;
    });
    xhr.send(data);
  }

  /** Asks (in the page) whether to resume an earlier upload of the same file. */
  function offerResume(previous) {
    const offer = $("resume-offer");
    const when = previous.creationTime ? new Date(previous.creationTime).toLocaleString() : "earlier";
    $("resume-text").textContent = `An upload of this file started ${when} stopped part-way. Resume it where it stopped?`;
    offer.hidden = false;
    return new Promise((resolve) => {
      const answer = (yes) => {
        offer.hidden = true;
        $("resume-yes").onclick = $("resume-no").onclick = null;
        resolve(yes);
      };
      $("resume-yes").onclick = () => answer(true);
      $("resume-no").onclick = () => answer(false);
    });
  }

  /** The video an upload URL (`/api/uploads/<video id>.<secret>`) belongs to. */
  const videoOfUpload = (url) => decodeURIComponent(url.split("/").pop().split(".")[0]);

  /**
   * Resumable upload (tus): a dropped connection is retried from the last byte the server has,
   * and the URL is kept (localStorage, by the file's fingerprint) so a reload can resume too.
   */
  async function uploadTus(file, title, playback) {
    const metadata = { filename: file.name, filetype: file.type || "application/octet-stream" };
    if (title) metadata.title = title;
    if (playback) metadata.playback = playback;
    const upload = new tus.Upload(file, {
      endpoint: "/api/uploads",
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => showUploadProgress(sent, total),
      onError: (error) => {
        const body = error.originalResponse && error.originalResponse.getBody && error.originalResponse.getBody();
        let message = error.message;
        try {
          message = JSON.parse(body).error.message;
        } catch {}
        say(`The upload failed: ${message}. Choose the same file again to resume it.`, true);
        submit.disabled = false;
        window.spoolUpload = null;
      },
      onSuccess: async () => {
        window.spoolUpload = null;
        try {
          const response = await fetch(`/api/videos/${encodeURIComponent(videoOfUpload(upload.url))}`);
          uploaded(await response.json());
        } catch {
          say("Uploaded; reload the page to see it.");
          submit.disabled = false;
        }
      },
    });
    window.spoolUpload = upload; // tests interrupt it like a dropped connection would
    const previous = await upload.findPreviousUploads().catch(() => []);
    if (previous.length) {
      if (await offerResume(previous[0])) {
        upload.resumeFromPreviousUpload(previous[0]);
        say("Resuming the earlier upload…");
      } else {
        // Start over: the earlier one is forgotten (and expires on the server).
        for (const p of previous) if (p.urlStorageKey) localStorage.removeItem(p.urlStorageKey);
      }
    }
    upload.start();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    const title = $("upload-title").value.trim();
    const playback = $("upload-playback").value;
    resetJob();
    say("Uploading…");
    if (window.tus && tus.isSupported) uploadTus(file, title, playback);
    else uploadMultipart(file, title, playback);
  });

  // --- import from a URL ---

  const importForm = $("import-form");
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = $("import-url").value.trim();
    if (!url) return;
    const title = $("upload-title").value.trim();
    const playback = $("upload-playback").value;
    $("import-submit").disabled = true;
    resetJob();
    uploadPercent.textContent = "–";
    say("Importing…");
    try {
      const response = await fetch("/api/videos", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ url, ...(title ? { title } : {}), ...(playback ? { playback } : {}) }),
      });
      const body = await response.json().catch(() => null);
      if (response.status !== 201 || !body || !body.id) {
        say((body && body.error && body.error.message) || `Import failed (HTTP ${response.status})`, true);
        submit.disabled = false;
        return;
      }
      renderCard(body);
      showVideo(body);
      follow(body.id, showVideo);
      importForm.reset();
    } catch {
      say("The import failed: network error", true);
      submit.disabled = false;
    } finally {
      $("import-submit").disabled = false;
    }
  });
})();
