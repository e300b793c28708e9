// MusiLingo page: choose or record audio, see its waveform, get a caption, chat about it.
// Plain JavaScript, no build step, no external resources. Talks to /health and /v1/* only.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, conversationId: null, busy: 0, peaks: null, duration: 0 };

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
  const ready = state.file !== null && state.busy === 0;
  $("question").disabled = state.file === null;
  $("ask").disabled = !ready;
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

async function post(path, form) {
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

// ---------------------------------------------------------------- server info
async function loadHealth() {
  try {
    const r = await fetch("/health");
    const h = await r.json();
    $("model-info").textContent = `model ${h.model} on ${h.device} · version ${h.version}`;
    $("untrained").hidden = h.trained;
  } catch (e) {
    $("model-info").textContent = "The server does not answer.";
  }
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
function useFile(file) {
  if (!file) return;
  showError("");
  state.file = file;
  state.conversationId = null;
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
  caption();
}

async function caption() {
  const file = state.file;
  $("caption").textContent = "";
  $("windows").textContent = "";
  $("caption-timings").textContent = "";
  setBusy("The model is listening and writing a caption…");
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const r = await post("/v1/caption", form);
    if (file !== state.file) return;  // another file was chosen meanwhile
    $("caption").classList.remove("muted");
    $("caption").textContent = r.text || "(the model wrote nothing)";
    for (const w of r.windows) {
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
    $("caption").classList.add("muted");
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

async function sendMessage(message) {
  const form = new FormData();
  form.append("message", message);
  if (state.conversationId) form.append("conversation_id", state.conversationId);
  else form.append("file", state.file, state.file.name);
  return post("/v1/chat", form);
}

async function ask(event) {
  event.preventDefault();
  const message = $("question").value.trim();
  if (!message || !state.file || state.busy) return;
  showError("");
  $("question").value = "";
  addMessage("you", message);
  setBusy("The model is thinking about your question…");
  const file = state.file;
  try {
    let r;
    try {
      r = await sendMessage(message);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "unknown_conversation")) throw err;
      addMessage("note", "The earlier conversation expired on the server; starting a new one.");
      state.conversationId = null;
      r = await sendMessage(message);
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
  loadHealth();
}

setup();
