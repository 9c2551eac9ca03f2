// Talks to /api/v1 with the signed-in token.
//
// The token lives in this tab's sessionStorage and goes out only as an
// `Authorization: Bearer` header on fetch. The console sets no cookie, so a
// request another site makes the browser send carries no credential: there
// is no cross-site request forgery to defend against. The token is never
// put in a URL (the live stream is read with fetch, not EventSource, for
// that reason), so it stays out of logs and history.

const KEY = 'org-mesh.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

function headers(extra = {}) {
  return { authorization: `Bearer ${token.get() ?? ''}`, ...extra };
}

/** GETs or POSTs JSON; a non-2xx answer becomes an ApiError with the API's message. */
export async function request(path, { method = 'GET', body } = {}) {
  const init = { method, headers: headers(), cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers = headers({ 'content-type': 'application/json' });
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, 'network', `org-mesh did not answer: ${e.message}`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = data?.error ?? {};
    throw new ApiError(response.status, err.code ?? 'error', err.message ?? response.statusText);
  }
  return data;
}

export const get = (path) => request(path);
export const post = (path, body) => request(path, { method: 'POST', body });

/**
 * Follows /api/v1/events: calls `onChange(topic)` for each change and
 * `onState(state)` with 'live', 'reconnecting' or 'refused'. Reconnects
 * with a growing pause; returns a function that stops it.
 */
export function follow(onChange, onState) {
  const stop = new AbortController();
  let pause = 1000;
  (async () => {
    while (!stop.signal.aborted) {
      try {
        const response = await fetch('/api/v1/events', {
          headers: headers({ accept: 'text/event-stream' }),
          cache: 'no-store',
          credentials: 'omit',
          signal: stop.signal,
        });
        if (response.status === 401 || response.status === 403) {
          onState('refused');
          return;
        }
        if (!response.ok || !response.body) throw new Error(`status ${response.status}`);
        await read(response.body, (event, data) => {
          if (event === 'ready') {
            pause = 1000;
            onState('live');
          } else if (event === 'change') {
            onChange(JSON.parse(data).topic);
          }
        });
      } catch (e) {
        if (stop.signal.aborted) return;
      }
      onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 30000);
    }
  })();
  return () => stop.abort();
}

/** Splits a server-sent event stream into (event, data) pairs. */
async function read(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(event, data.join('\n'));
    }
  }
}
