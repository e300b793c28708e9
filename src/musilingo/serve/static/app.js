// MusiLingo page: choose or record audio, see its waveform, get a caption, chat about it.
// Plain JavaScript, no build step, no external resources. Talks to health and v1/* only, by
// relative URLs (no leading "/"), so it works under a reverse proxy's path prefix too.
// Each chosen file is uploaded once: the caption is the first message of a chat (v1/chat with
// the file), and questions continue that chat by its conversation_id. The server's limits
// (v1/limits) are shown, and a file beyond them is refused here before it is sent.
"use strict";

const $ = (id) => document.getElementById(id);
// the instruction v1/caption uses; /health says the server's own (this is the fallback)
const DEFAULT_CAPTION_INSTRUCTION = "Please give a caption to the music.";
const state = {
  file: null, conversationId: null, busy: 0, peaks: null, duration: 0,
  rejected: false,  // the chosen file is beyond the limits or not audio: nothing to ask about
  limits: null, captionInstruction: DEFAULT_CAPTION_INSTRUCTION, ready: null,
};

// ---------------------------------------------------------------- status and errors
function setBusy(text) {
  state.busy += 1;
  $("status-text").textContent = text;
  $("status").hidden = false;
  updateControls();
}

function clearBusy() {
  state.busy = Math.max(0, state.busy - 1);
  if (state.busy === 0) $("status").hidden = true;
  updateControls();
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function updateControls() {
  const usable = state.file !== null && !state.rejected;
  $("question").disabled = !usable;
  $("ask").disabled = !(usable && state.busy === 0);
}

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.detail) || `the server answered ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.retryAfter = retryAfter;
  }
}

// A sentence for people, from an API error or a network failure.
function plainWords(err) {
  if (!(err instanceof ApiError)) return "Could not reach the server. Is it still running?";
  switch (err.status) {
    case 413: return "That file is too big for this server: " + err.message;
    case 422: return err.code === "bad_audio" ? "That file could not be read as audio: " + err.message
                                              : "The request was not accepted: " + err.message;
    case 503: return `The server is busy right now. Please try again in ${err.retryAfter || "a few"} seconds.`;
    case 504: return "The model took too long to answer. Try again, or use a shorter clip.";
    default: return "Something went wrong on the server: " + err.message;
  }
}

async function post(path, form) {  // path is relative, e.g. "v1/chat"
  let response;
  try {
    response = await fetch(path, { method: "POST", body: form });
  } catch (e) {
    throw new Error("network");
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new ApiError(response.status, body, response.headers.get("Retry-After"));
  return body;
}

function fmtTime(s) {
  const m = Math.floor(s / 60);
  const sec = (s % 60).toFixed(1).padStart(4, "0");
  return `${m}:${sec}`;
}

function fmtTimings(t) {
  if (!t) return "";
  return `decode ${Math.round(t.decode_ms)} ms · encode ${Math.round(t.encode_ms)} ms · ` +
         `generate ${Math.round(t.generate_ms)} ms · total ${Math.round(t.total_ms)} ms`;
}

function fmtMiB(bytes) {
  const mib = bytes / 1024 / 1024;
  return `${mib < 10 ? mib.toFixed(2) : mib.toFixed(1)} MiB`;
}

function fmtDuration(s) {
  if (s < 60) return `${+s.toFixed(1)} s`;
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  return sec ? `${m} min ${sec} s` : `${m} min`;
}

// ---------------------------------------------------------------- server info
async function loadHealth() {
  try {
    const r = await fetch("health");
    const h = await r.json();
    $("model-info").textContent = `model ${h.model} on ${h.device} · version ${h.version}`;
    $("untrained").hidden = h.trained;
    if (h.caption_instruction) state.captionInstruction = h.caption_instruction;
  } catch (e) {
    $("model-info").textContent = "The server does not answer.";
  }
}

async function loadLimits() {
  try {
    const r = await fetch("v1/limits");
    if (!r.ok) throw new Error(`status ${r.status}`);
    const l = await r.json();
    state.limits = l;
    const kinds = l.audio_extensions.map((e) => e.replace(/^\./, "")).join(", ");
    $("limits").textContent = `This server accepts files up to ${fmtMiB(l.max_upload_bytes)} ` +
      `and ${fmtDuration(l.max_duration_s)} of audio (${kinds}); ` +
      `questions up to ${l.max_question_chars} characters.`;
    $("file-input").accept = [...l.audio_mime_types, ...l.audio_extensions].join(",");
    $("question").maxLength = l.max_question_chars;
  } catch (e) {
    $("limits").textContent = "The server did not say its limits; it will check each file itself.";
  }
}

// Why the server would refuse `file` (null when it is within the limits, or they are unknown).
async function beyondLimits(file, url) {
  const l = state.limits;
  if (!l) return null;
  if (file.size > l.max_upload_bytes) {
    return `That file is ${fmtMiB(file.size)}; this server accepts files up to ` +
           `${fmtMiB(l.max_upload_bytes)}. Choose a shorter or more compressed file.`;
  }
  const duration = await probeDuration(url, 2000);
  if (isFinite(duration) && duration > l.max_duration_s + 0.05) {
    return `That audio is ${fmtDuration(duration)} long; this server accepts at most ` +
           `${fmtDuration(l.max_duration_s)}. Choose a shorter excerpt.`;
  }
  return null;
}

// The duration the browser reads from the file's header (NaN when it cannot tell in `ms`).
function probeDuration(url, ms) {
  return new Promise((resolve) => {
    const probe = new Audio();
    let timer = null;
    const done = (d) => { clearTimeout(timer); probe.removeAttribute("src"); resolve(d); };
    timer = setTimeout(() => done(NaN), ms);
    probe.preload = "metadata";
    probe.addEventListener("loadedmetadata", () => done(probe.duration), { once: true });
    probe.addEventListener("error", () => done(NaN), { once: true });
    probe.src = url;
  });
}

// ---------------------------------------------------------------- waveform
function computePeaks(buffer, columns) {
  const channels = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) channels.push(buffer.getChannelData(c));
  const n = buffer.length;
  const step = Math.max(1, Math.floor(n / columns));
  const peaks = new Float32Array(columns * 2);
  for (let x = 0; x < columns; x++) {
    let lo = 0, hi = 0;
    const start = Math.floor((x * n) / columns);
    const end = Math.min(n, start + step);
    for (let i = start; i < end; i++) {
      let v = 0;
      for (const ch of channels) v += ch[i];
      v /= channels.length;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    peaks[2 * x] = lo;
    peaks[2 * x + 1] = hi;
  }
  return peaks;
}

function drawWaveform() {
  const canvas = $("waveform");
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.floor(canvas.clientWidth * dpr));
  const height = Math.floor(120 * dpr);
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const mid = height / 2;
  if (!state.peaks) {
    ctx.fillStyle = "#667085";
    ctx.font = `${13 * dpr}px system-ui, sans-serif`;
    ctx.fillText(state.waveNote || "", 10 * dpr, mid);
    return;
  }
  const audio = $("audio");
  const played = state.duration ? (audio.currentTime / state.duration) * width : 0;
  const cols = state.peaks.length / 2;
  for (let x = 0; x < width; x++) {
    const k = Math.min(cols - 1, Math.floor((x * cols) / width));
    const lo = state.peaks[2 * k], hi = state.peaks[2 * k + 1];
    ctx.fillStyle = x < played ? "#9aaef0" : "#3056d3";
    const top = mid - hi * mid * 0.95;
    const bottom = mid - lo * mid * 0.95;
    ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
  }
  ctx.fillStyle = "#b42318";
  ctx.fillRect(Math.floor(played), 0, Math.max(1, dpr), height);
}

async function showWaveform(file) {
  state.peaks = null;
  state.waveNote = "Drawing the waveform…";
  drawWaveform();
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) { state.waveNote = "This browser cannot draw waveforms."; drawWaveform(); return; }
  const ctx = new Ctx();
  try {
    const buffer = await ctx.decodeAudioData(await file.arrayBuffer());
    state.duration = buffer.duration;
    state.peaks = computePeaks(buffer, 2000);
  } catch (e) {
    state.waveNote = "This browser cannot decode this format to draw it (the server may still read it).";
  } finally {
    if (ctx.close) ctx.close();
  }
  drawWaveform();
}

function animatePlayhead() {
  drawWaveform();
  if (!$("audio").paused) requestAnimationFrame(animatePlayhead);
}

// ---------------------------------------------------------------- choosing audio
function forgetConversation() {  // the server would drop it when idle; free it now
  if (state.conversationId) {
    fetch(`v1/chat/${encodeURIComponent(state.conversationId)}`, { method: "DELETE" }).catch(() => {});
  }
  state.conversationId = null;
}

function useFile(file) {
  if (!file) return;
  showError("");
  forgetConversation();
  state.file = file;
  state.rejected = false;
  state.duration = 0;
  $("chat-log").textContent = "";
  $("player").hidden = false;
  $("file-name").textContent = `${file.name} (${(file.size / 1024 / 1024).toFixed(2)} MiB)`;
  const audio = $("audio");
  if (audio.dataset.url) URL.revokeObjectURL(audio.dataset.url);
  audio.dataset.url = URL.createObjectURL(file);
  audio.src = audio.dataset.url;
  updateControls();
  showWaveform(file);
  caption(file, audio.dataset.url);
}

// Check the file against the limits, then upload it once: the caption is the first message of
// the conversation that later questions continue.
async function caption(file, url) {
  $("caption").classList.add("muted");
  $("caption").textContent = "";
  $("windows").textContent = "";
  $("caption-timings").textContent = "";
  setBusy("Checking the file…");
  try {
    await state.ready;
    const refusal = await beyondLimits(file, url);
    if (file !== state.file) return;  // another file was chosen meanwhile
    if (refusal) {
      state.rejected = true;
      $("caption").textContent = "Not sent to the server.";
      showError(refusal);
      return;
    }
    $("status-text").textContent = "The model is listening and writing a caption…";
    const r = await sendMessage(state.captionInstruction, file);
    if (file !== state.file) {  // another file was chosen meanwhile: this chat is not needed
      fetch(`v1/chat/${encodeURIComponent(r.conversation_id)}`, { method: "DELETE" }).catch(() => {});
      return;
    }
    state.conversationId = r.conversation_id;
    $("caption").classList.remove("muted");
    $("caption").textContent = r.text || "(the model wrote nothing)";
    for (const w of r.windows) {  // audio longer than one window: a caption per window too
      const li = document.createElement("li");
      const jump = document.createElement("button");
      jump.type = "button";
      jump.textContent = `${fmtTime(w.start_s)}–${fmtTime(w.end_s)}`;
      jump.title = "play from here";
      jump.addEventListener("click", () => { $("audio").currentTime = w.start_s; $("audio").play(); });
      li.append(jump, document.createTextNode(w.text));
      $("windows").append(li);
    }
    const notes = r.notes.length ? ` · note: ${r.notes.join("; ")}` : "";
    const whole = r.windows.length ? ` · ${r.windows.length} windows; the caption above is about the whole track` : "";
    $("caption-timings").textContent = `${r.duration_s.toFixed(1)} s of audio · ${fmtTimings(r.timings)}${whole}${notes}`;
  } catch (err) {
    if (file !== state.file) return;
    // a file the server cannot use (too large, too long, not audio) is not worth asking about
    if (err instanceof ApiError && (err.status === 413 || err.code === "bad_audio")) state.rejected = true;
    $("caption").textContent = "No caption.";
    showError(plainWords(err));
  } finally {
    clearBusy();
  }
}

// ---------------------------------------------------------------- chat
function addMessage(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("chat-log").append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

// One chat message: continues the conversation when there is one, else starts it with `file`.
async function sendMessage(message, file) {
  const form = new FormData();
  form.append("message", message);
  if (state.conversationId) form.append("conversation_id", state.conversationId);
  else form.append("file", file, file.name);
  return post("v1/chat", form);
}

async function ask(event) {
  event.preventDefault();
  const message = $("question").value.trim();
  if (!message || !state.file || state.rejected || state.busy) return;
  showError("");
  $("question").value = "";
  addMessage("you", message);
  setBusy("The model is thinking about your question…");
  const file = state.file;
  try {
    let r;
    try {
      r = await sendMessage(message, file);  // sends the file only if the caption did not start a chat
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "unknown_conversation")) throw err;
      addMessage("note", "The earlier conversation expired on the server; sending the audio again.");
      state.conversationId = null;
      r = await sendMessage(message, file);
    }
    if (file !== state.file) return;
    state.conversationId = r.conversation_id;
    addMessage("model", r.text || "(the model wrote nothing)");
  } catch (err) {
    if (file === state.file) {
      addMessage("note", "No answer.");
      showError(plainWords(err));
    }
  } finally {
    clearBusy();
    $("question").focus();
  }
}

// ---------------------------------------------------------------- recording (progressive)
function encodeWav(buffer) {
  // mono 16-bit PCM WAV at the recording's own rate (the server resamples)
  const n = buffer.length, rate = buffer.sampleRate;
  const mono = new Float32Array(n);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) mono[i] += data[i] / buffer.numberOfChannels;
  }
  const out = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (off, s) => { for (let i = 0; i < s.length; i++) out.setUint8(off + i, s.charCodeAt(i)); };
  text(0, "RIFF"); out.setUint32(4, 36 + 2 * n, true); text(8, "WAVE");
  text(12, "fmt "); out.setUint32(16, 16, true); out.setUint16(20, 1, true); out.setUint16(22, 1, true);
  out.setUint32(24, rate, true); out.setUint32(28, rate * 2, true); out.setUint16(32, 2, true);
  out.setUint16(34, 16, true); text(36, "data"); out.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) {
    const v = Math.max(-1, Math.min(1, mono[i]));
    out.setInt16(44 + 2 * i, v < 0 ? v * 0x8000 : v * 0x7fff, true);
  }
  return new Blob([out], { type: "audio/wav" });
}

function setupRecording() {
  const button = $("record");
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder)) return;
  button.hidden = false;
  let recorder = null;
  button.addEventListener("click", async () => {
    if (recorder && recorder.state === "recording") { recorder.stop(); return; }
    showError("");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      showError("The browser did not allow the microphone; choose a file instead.");
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
    recorder.addEventListener("stop", async () => {
      stream.getTracks().forEach((t) => t.stop());
      button.textContent = "● Record";
      button.classList.remove("recording");
      const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      let file;
      try {  // send WAV: every server can read it, whatever the browser recorded in
        const Ctx = window.AudioContext || window.webkitAudioContext;
        const ctx = new Ctx();
        const buffer = await ctx.decodeAudioData(await blob.arrayBuffer());
        if (ctx.close) ctx.close();
        file = new File([encodeWav(buffer)], "recording.wav", { type: "audio/wav" });
      } catch (e) {
        file = new File([blob], "recording.webm", { type: blob.type });
      }
      useFile(file);
    });
    recorder.start();
    button.textContent = "■ Stop recording";
    button.classList.add("recording");
  });
}

// ---------------------------------------------------------------- wiring
function setup() {
  $("file-input").addEventListener("change", (e) => useFile(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) useFile(e.dataTransfer.files[0]);
  });
  const audio = $("audio");
  audio.addEventListener("play", () => requestAnimationFrame(animatePlayhead));
  audio.addEventListener("seeked", drawWaveform);
  audio.addEventListener("loadedmetadata", () => {
    if (!state.duration && isFinite(audio.duration)) state.duration = audio.duration;
  });
  $("waveform").addEventListener("click", (e) => {
    if (!state.duration) return;
    const rect = e.currentTarget.getBoundingClientRect();
    audio.currentTime = ((e.clientX - rect.left) / rect.width) * state.duration;
    drawWaveform();
  });
  window.addEventListener("resize", drawWaveform);
  $("ask-form").addEventListener("submit", ask);
  setupRecording();
  updateControls();
  state.ready = Promise.all([loadHealth(), loadLimits()]);
}

setup();
