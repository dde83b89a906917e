// Reading the server's JSON answers, for both pages (the page, and the API reference).
"use strict";

// An answer's JSON, or an Error saying what went wrong (its `status`: the answer's): an error answer's detail;
// an answer that is no JSON (a reverse proxy's HTML 413 or 502: `serve --allow-host`) by its status, where the
// parser's "Unexpected token '<'" said nothing; a server that cannot be reached, where the browser said "Failed
// to fetch".
async function getJSON(url, options) {
  let response;
  try {
    // never from the browser's cache: Back to the page showed a deleted run's list again, kept from before
    response = await fetch(url, { cache: "no-store", ...options });
  } catch {
    throw new Error("cannot reach the mnistlab server (is `mnistlab serve` still running?)");
  }
  const body = await response.json().catch(() => {
    const answered = `the server answered ${response.status} ${response.statusText}`.trim();
    throw Object.assign(new Error(response.ok ? `${answered}, not JSON` : answered), { status: response.status });
  });
  if (!response.ok) throw Object.assign(new Error(problem(body, response)), { status: response.status });
  return body;
}

// An error answer's message: its detail, or each field's problem where the request was malformed (422).
function problem(body, response) {
  if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return body.detail || response.statusText;
}
