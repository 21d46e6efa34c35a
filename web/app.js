// The try-it page: ask for a code, type it in, see the verification token
// with its signature checked in the browser against the API's JWKS.
// Plain JavaScript, no build step, no dependency.
//
// The API is the page's own origin unless ?api=https://api.example.com says
// otherwise; the API must then allow this page's origin (CORS: the
// template's AllowedOrigins).
"use strict";

const $ = (id) => document.getElementById(id);

const els = {
  apiBase: $("api-base"),
  requestForm: $("request-form"),
  phone: $("phone"),
  send: $("send"),
  verifyForm: $("verify-form"),
  sentTo: $("sent-to"),
  code: $("code"),
  verify: $("verify"),
  resend: $("resend"),
  status: $("status"),
  error: $("error"),
  errorMessage: $("error-message"),
  errorCode: $("error-code"),
  result: $("result"),
  resultTitle: $("result-title"),
  signature: $("signature"),
  claims: $("claims"),
  tokenHeader: $("token-header"),
  token: $("token"),
  restart: $("restart"),
};

/** The API's base URL: ?api=... when it is an http(s) URL, else this page's origin. */
function apiBase() {
  const asked = new URLSearchParams(location.search).get("api");
  if (asked) {
    try {
      const url = new URL(asked);
      if (url.protocol === "https:" || url.protocol === "http:") {
        return url.href.replace(/\/+$/, "");
      }
    } catch (_) {
      // Not a URL: fall back to this page's origin.
    }
  }
  return location.origin;
}

const API = apiBase();
els.apiBase.textContent = API;

// ---------------------------------------------------------------- messages

function say(text) {
  els.status.textContent = text;
}

function clearError() {
  els.error.hidden = true;
  els.errorMessage.textContent = "";
  els.errorCode.textContent = "";
  for (const input of [els.phone, els.code]) {
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", input.id + "-hint");
  }
}

/**
 * Shows an error's message to the person, and moves the focus to `field`;
 * `invalid` marks that field as the one in error.
 */
function showError(message, code, field, invalid = true) {
  els.errorMessage.textContent = message;
  els.errorCode.textContent = code || "";
  els.errorCode.parentElement.hidden = !code;
  els.error.hidden = false;
  if (field) {
    if (invalid) field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", field.id + "-hint error-message");
    field.focus();
  }
}

const FIELD_OF_ERROR = {
  invalid_phone_number: () => els.phone,
  destination_not_allowed: () => els.phone,
  invalid_code: () => els.code,
  invalid_code_format: () => els.code,
};

// ---------------------------------------------------------------- the API

/**
 * POSTs JSON to the API. Returns {status, body, retryAfter}; a network or
 * CORS failure becomes a status 0 answer with a message of our own.
 */
async function post(path, payload) {
  let response;
  try {
    response = await fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
      credentials: "omit",
    });
  } catch (_) {
    return {
      status: 0,
      body: {
        error: "network_error",
        message: `The API at ${API} did not answer, or does not allow this page's origin (${location.origin}). ` +
          "Deployed with the template, add this origin to the AllowedOrigins parameter.",
      },
    };
  }
  let body;
  try {
    body = await response.json();
  } catch (_) {
    body = { error: "bad_response", message: `The API answered ${response.status} without a JSON body.` };
  }
  const header = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return { status: response.status, body, retryAfter: Number.isFinite(header) ? header : null };
}

// ---------------------------------------------------------------- resend countdown

let countdown = null;

/** A wait to count down: "45 s", "14:59 min". */
function formatWait(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = String(seconds % 60).padStart(2, "0");
  return `${minutes}:${rest} min`;
}

/** A length of time to read: "40 seconds", "5 minutes", "2 hours 10 minutes", "3 days". */
function formatDuration(seconds) {
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (seconds < 60) return plural(seconds, "second");
  if (seconds < 3600) return plural(Math.round(seconds / 60), "minute");
  if (seconds < 86400) {
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.round((seconds % 3600) / 60);
    return minutes ? `${plural(hours, "hour")} ${plural(minutes, "minute")}` : plural(hours, "hour");
  }
  return plural(Math.round(seconds / 86400), "day");
}

/** Disables Resend for this many seconds, counting down on the button. */
function holdResend(seconds) {
  clearInterval(countdown);
  const until = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(countdown);
      countdown = null;
      els.resend.disabled = false;
      els.resend.textContent = "Resend code";
      els.resend.dataset.wait = "0";
      return;
    }
    els.resend.disabled = true;
    els.resend.textContent = `Resend in ${formatWait(left)}`;
    els.resend.dataset.wait = String(left);
  };
  tick();
  if (seconds > 0) countdown = setInterval(tick, 250);
}

// ---------------------------------------------------------------- WebOTP

let webOtp = null;

/** Where the browser has the WebOTP API, fills the code from the SMS. */
function listenForSms() {
  stopListening();
  if (!("OTPCredential" in window) || !navigator.credentials) return;
  webOtp = new AbortController();
  navigator.credentials
    .get({ otp: { transport: ["sms"] }, signal: webOtp.signal })
    .then((credential) => {
      if (credential && credential.code) {
        els.code.value = credential.code;
        say("The code was read from the SMS.");
        els.verifyForm.requestSubmit();
      }
    })
    .catch(() => {
      // Aborted, or the person declined: they type the code.
    });
}

function stopListening() {
  if (webOtp) webOtp.abort();
  webOtp = null;
}

// ---------------------------------------------------------------- the flow

function selectedChannel() {
  return els.requestForm.querySelector('input[name="channel"]:checked').value;
}

let sentPhone = null;

async function requestCode() {
  clearError();
  const phoneNumber = els.phone.value.trim();
  if (!phoneNumber) {
    showError("Type a phone number, with its country code.", "", els.phone);
    return;
  }
  const channel = selectedChannel();
  els.send.disabled = true;
  els.resend.disabled = true;
  say(channel === "voice" ? "Placing the call…" : "Sending the code…");
  const { status, body, retryAfter } = await post("/api/otp/request", { phoneNumber, channel });
  els.send.disabled = false;

  if (status === 200) {
    sentPhone = phoneNumber;
    els.verifyForm.hidden = false;
    els.sentTo.textContent = body.channel === "voice"
      ? `We are calling ${phoneNumber}. Answer it: a voice reads the code out, twice.`
      : `We sent a code by SMS to ${phoneNumber}.`;
    say(`${body.message} The code is valid for ${formatDuration(body.expiresInSeconds)}.`);
    holdResend(body.retryAfterSeconds ?? 0);
    els.code.value = "";
    els.code.focus();
    if (body.channel !== "voice") listenForSms();
    return;
  }

  say("");
  const mayHaveCode = status === 429 && body.error === "too_many_requests";
  if (mayHaveCode) {
    // A code sent a moment ago may be on its way: let the person type it.
    sentPhone = phoneNumber;
    els.verifyForm.hidden = false;
    els.sentTo.textContent = `A code may already be on its way to ${phoneNumber}: if it arrived, type it below.`;
  }
  if (!els.verifyForm.hidden) {
    if (retryAfter !== null) holdResend(retryAfter);
    else if (countdown === null) els.resend.disabled = false;
  }
  const field = FIELD_OF_ERROR[body.error];
  if (field) showError(body.message, body.error, field());
  // Not the field's fault: the focus goes where the person goes next.
  else showError(body.message, body.error, mayHaveCode ? els.code : els.phone, false);
}

async function verifyCode() {
  clearError();
  const otp = els.code.value.trim();
  if (!otp) {
    showError("Type the code you received.", "", els.code);
    return;
  }
  els.verify.disabled = true;
  say("Checking the code…");
  const { status, body, retryAfter } = await post("/api/otp/verify", { phoneNumber: sentPhone, otp });
  els.verify.disabled = false;

  if (status === 200) {
    stopListening();
    // The result's heading takes the focus, and its signature line is live.
    say("");
    await showToken(body.verificationToken);
    return;
  }
  say("");
  if (status === 429 && retryAfter !== null) holdResend(retryAfter);
  const field = FIELD_OF_ERROR[body.error];
  if (field) showError(body.message, body.error, field());
  else showError(body.message, body.error, els.code, false);
  els.code.select();
}

function restart() {
  stopListening();
  clearInterval(countdown);
  countdown = null;
  clearError();
  say("");
  sentPhone = null;
  els.result.hidden = true;
  els.verifyForm.hidden = true;
  els.requestForm.hidden = false;
  els.code.value = "";
  els.phone.value = "";
  els.resend.disabled = true;
  els.resend.textContent = "Resend code";
  els.phone.focus();
}

els.requestForm.addEventListener("submit", (event) => {
  event.preventDefault();
  requestCode();
});
els.resend.addEventListener("click", () => requestCode());
els.verifyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  verifyCode();
});
els.restart.addEventListener("click", restart);
// Another number is another flow.
els.phone.addEventListener("input", () => {
  if (sentPhone !== null && els.phone.value.trim() !== sentPhone) {
    stopListening();
    els.verifyForm.hidden = true;
    sentPhone = null;
  }
});

// ---------------------------------------------------------------- the token

function base64UrlBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function base64UrlJson(text) {
  return JSON.parse(new TextDecoder().decode(base64UrlBytes(text)));
}

/**
 * Checks a compact JWS against the JWKS at jwksUrl with WebCrypto.
 * Returns {state, text}; state is one of:
 *   "valid", "invalid"  the ES256 signature checked against the key set;
 *   "unavailable"       the key set could not be fetched;
 *   "empty"             the key set has no key: an HS256 deployment;
 *   "hs256"             an HS256 token although the key set has keys;
 *   "no-key"            no key of the set has the token's kid;
 *   "unsupported"       another algorithm.
 */
async function checkSignature(token, jwksUrl) {
  const [headerPart, payloadPart, signaturePart] = token.split(".");
  const header = base64UrlJson(headerPart);

  let jwks;
  try {
    const response = await fetch(jwksUrl, { credentials: "omit" });
    if (!response.ok) {
      return {
        state: "unavailable",
        text: `The signature was not checked: the key set (${jwksUrl}) is unavailable, HTTP ${response.status}. ` +
          `This token is ${header.alg}.`,
      };
    }
    jwks = await response.json();
  } catch (_) {
    return {
      state: "unavailable",
      text: `The signature was not checked: the key set (${jwksUrl}) did not answer, or does not allow this page's origin.`,
    };
  }
  const keys = Array.isArray(jwks && jwks.keys) ? jwks.keys : [];
  if (keys.length === 0) {
    return {
      state: "empty",
      text: "The key set is empty: this deployment signs its tokens with a shared secret (HS256), " +
        "so the signature cannot be checked in the browser. Your backend checks it with that secret.",
    };
  }
  if (header.alg === "HS256") {
    return {
      state: "hs256",
      text: "This token is HS256, signed with a shared secret: the published keys cannot check it, nor can the browser.",
    };
  }
  if (header.alg !== "ES256") {
    return { state: "unsupported", text: `This page checks ES256 signatures; this token is ${header.alg}.` };
  }
  const candidates = keys.filter((k) => k.kty === "EC" && k.crv === "P-256" && (!header.kid || k.kid === header.kid));
  if (candidates.length === 0) {
    return { state: "no-key", text: `No P-256 key of the key set has the token's key id (kid "${header.kid}"). Do not trust it.` };
  }

  const signed = new TextEncoder().encode(`${headerPart}.${payloadPart}`);
  // A JWS ES256 signature is r || s, 64 bytes: what WebCrypto's ECDSA expects.
  const signature = base64UrlBytes(signaturePart);
  for (const jwk of candidates) {
    const key = await crypto.subtle.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, ext: true },
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    const ok = signature.length === 64 &&
      await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, signed);
    if (ok) {
      return { state: "valid", text: `Signature valid: ES256, checked in this browser with key "${jwk.kid}" of ${jwksUrl}.` };
    }
  }
  return { state: "invalid", text: "Signature INVALID: no key of the key set verifies this token. Do not trust it." };
}

function describeClaim(name, value) {
  if ((name === "iat" || name === "exp" || name === "nbf") && typeof value === "number") {
    const when = new Date(value * 1000);
    const seconds = Math.round(value - Date.now() / 1000);
    const relative = Math.abs(seconds) < 5 ? "now"
      : seconds > 0 ? `in ${formatDuration(seconds)}` : `${formatDuration(-seconds)} ago`;
    return `${value} (${when.toLocaleString()}, ${relative})`;
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

async function showToken(token) {
  els.requestForm.hidden = true;
  els.verifyForm.hidden = true;
  els.result.hidden = false;
  els.resultTitle.textContent = "Phone number verified";
  els.token.textContent = token;
  els.claims.replaceChildren();
  let header;
  let claims;
  try {
    header = base64UrlJson(token.split(".")[0]);
    claims = base64UrlJson(token.split(".")[1]);
  } catch (_) {
    els.signature.dataset.state = "malformed";
    els.signature.textContent = "The token is not a JWT this page can read.";
    els.resultTitle.focus();
    return;
  }
  els.tokenHeader.textContent = JSON.stringify(header);
  for (const [name, value] of Object.entries(claims)) {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = describeClaim(name, value);
    detail.dataset.claim = name;
    els.claims.append(term, detail);
  }
  els.signature.dataset.state = "pending";
  els.signature.textContent = "Checking the token's signature…";
  els.resultTitle.focus();
  let outcome;
  try {
    outcome = await checkSignature(token, `${API}/.well-known/jwks.json`);
  } catch (err) {
    outcome = { state: "invalid", text: `The signature check failed: ${err.message}` };
  }
  els.signature.dataset.state = outcome.state;
  els.signature.textContent = outcome.text;
  if (["invalid", "no-key"].includes(outcome.state)) {
    els.resultTitle.textContent = "Code accepted, but the token does not verify";
  }
}
