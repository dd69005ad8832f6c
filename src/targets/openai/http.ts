/**
 * Reliable JSON POSTs to an OpenAI-compatible server: p-queue bounds the requests in flight and
 * spaces their starts (rate limit), p-retry retries with exponential backoff and jitter, and each
 * attempt has its own timeout. Every attempt (first or retry) waits its turn in the queue, so a
 * backoff never holds a concurrency slot and retries count against the rate limit.
 *
 * Retried: 408, 409, 429, 5xx, timeouts, dropped connections and malformed bodies (a body that is
 * not JSON or fails `validate`). Not retried: other 4xx, which mean the request itself is wrong.
 */
import PQueue from 'p-queue';
import pRetry, { AbortError } from 'p-retry';
import { RunError, describeError } from '../../errors.js';

export interface HttpClientOptions {
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; never logged or put in an error message. */
  apiKey?: string;
  concurrency: number;
  /** Request starts per second; 0 = unlimited. */
  requestsPerSecond: number;
  timeoutMs: number;
  maxRetries: number;
  retryMinDelayMs: number;
  retryMaxDelayMs: number;
  /** Called after each failed attempt that will be retried (for progress logs and tests). */
  onRetry?: (event: { path: string; attempt: number; reason: string }) => void;
}

/** One attempt's failure that is worth another try. */
class TransientError extends Error {
  constructor(
    message: string,
    /** Server-requested wait (Retry-After), in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const RETRY_STATUSES = new Set([408, 409, 429]);

export class HttpClient {
  private readonly queue: PQueue;
  private readonly closing = new AbortController();

  constructor(private readonly options: HttpClientOptions) {
    const rateLimit =
      options.requestsPerSecond > 0
        ? { intervalCap: 1, interval: Math.max(1, Math.round(1000 / options.requestsPerSecond)) }
        : {};
    this.queue = new PQueue({ concurrency: options.concurrency, ...rateLimit });
  }

  /**
   * POST `body` as JSON to `path` (relative to the base URL) and return `validate(parsed body)`;
   * `validate` throws to reject a malformed body, which is retried.
   */
  async postJson<T>(path: string, body: unknown, validate: (json: unknown) => T): Promise<T> {
    const url = `${this.options.baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
    const payload = JSON.stringify(body);
    try {
      return await pRetry(() => this.queue.add(() => this.attempt(url, payload, validate)) as Promise<T>, {
        retries: this.options.maxRetries,
        factor: 2,
        minTimeout: this.options.retryMinDelayMs,
        maxTimeout: this.options.retryMaxDelayMs,
        randomize: true, // jitter: each delay × a random factor in [1, 2]
        signal: this.closing.signal,
        shouldRetry: ({ error }) => error instanceof TransientError,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (!(error instanceof TransientError) || retriesLeft === 0) return;
          this.options.onRetry?.({ path, attempt: attemptNumber, reason: error.message });
          if (error.retryAfterMs)
            await sleep(Math.min(error.retryAfterMs, this.options.retryMaxDelayMs), this.closing.signal);
        },
      });
    } catch (error) {
      if (error instanceof TransientError) {
        throw new RunError(
          `${url}: still failing after ${this.options.maxRetries + 1} attempts (last: ${error.message})`,
          'check that the server is up and not overloaded; raise target.max_retries or target.timeout_ms',
          'E_TARGET_UNAVAILABLE',
        );
      }
      if (this.closing.signal.aborted)
        throw new RunError(`${url}: request cancelled because the openai target engine was closed`);
      throw error;
    }
  }

  /** Cancel every queued and in-flight request. */
  close(): void {
    this.queue.clear();
    this.closing.abort();
  }

  private async attempt<T>(url: string, payload: string, validate: (json: unknown) => T): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    // A plain timer and controller, held until the attempt ends: Node 20 may garbage-collect an
    // `AbortSignal.any([AbortSignal.timeout(…)])` pair before it fires, leaving a hung request hung.
    const attempt = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort();
    }, this.options.timeoutMs);
    const onClose = () => attempt.abort();
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const response = await fetch(url, { method: 'POST', headers, body: payload, signal: attempt.signal });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      text = await response.text(); // the body read shares the attempt's timeout
    } catch (error) {
      if (this.closing.signal.aborted) throw new AbortError('closed');
      throw new TransientError(
        timedOut ? `no answer within ${this.options.timeoutMs} ms` : `connection failed (${networkReason(error)})`,
      );
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    }
    if (status < 200 || status >= 300) {
      // Error bodies are quoted in messages, logs, the distill journal and reports: scrubbed first,
      // before serverMessage shortens them (a cut could leave part of a key).
      const quoted = `HTTP ${status} ${serverMessage(this.scrub(text))}`;
      if (status === 401 || status === 403) {
        const hint = 'check the API key in the variable named by target.api_key_env';
        throw new AbortError(new RunError(`${url}: ${quoted}`, hint, 'E_TARGET_AUTH'));
      }
      if (RETRY_STATUSES.has(status) || status >= 500) throw new TransientError(quoted, retryAfterMs(retryAfter));
      const hint = 'the server rejected the request; check target.model and the sampling settings';
      throw new AbortError(new RunError(`${url}: ${quoted}`, hint, 'E_TARGET_REJECTED'));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new TransientError(`malformed response: not JSON (${text.length} bytes)`);
    }
    try {
      return validate(json);
    } catch (error) {
      if (error instanceof FatalResponseError) {
        error.cause.message = this.scrub(error.cause.message);
        throw new AbortError(error.cause);
      }
      throw new TransientError(`malformed response: ${this.scrub(describeError(error))}`);
    }
  }

  /** `text` (from the server) without the API key or any Authorization/Bearer credential it echoed. */
  private scrub(text: string): string {
    return scrubCredentials(text, this.options.apiKey);
  }
}

/** Thrown by `validate` for a well-formed response that cannot be used (retrying would not help). */
export class FatalResponseError extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

const REDACTED = '[redacted]';

/**
 * Remove credentials from text a server sent back: the key itself (also URL- and JSON-escaped),
 * any `Bearer <token>`, and the value of any `Authorization` header or field, in whatever form a
 * server echoes request headers (JSON, HTTP header lines, Python dict reprs).
 */
export function scrubCredentials(text: string, apiKey: string | undefined): string {
  let scrubbed = text;
  if (apiKey) {
    const forms = new Set([apiKey, encodeURIComponent(apiKey), JSON.stringify(apiKey).slice(1, -1)]);
    for (const form of forms) scrubbed = scrubbed.split(form).join(REDACTED);
  }
  return scrubbed
    .replace(/(["']?authorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]*/gi, `$1${REDACTED}`)
    .replace(/\b(bearer|basic)\s+(?!\[redacted\])[A-Za-z0-9\-._~+/=]+/gi, `$1 ${REDACTED}`);
}

function serverMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const message = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message);
    if (typeof message === 'string') return message.slice(0, 500);
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, 200);
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function networkReason(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return describeError(error);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
