/**
 * Reliable JSON requests to an OpenAI-compatible server, or to a fleet of replicas of one: each
 * replica has its own p-queue, which bounds its requests in flight and spaces their starts (rate
 * limit); p-retry retries with exponential backoff and jitter, and each attempt has its own timeout.
 * Every attempt (first or retry) waits its turn in a queue, so a backoff never holds a concurrency
 * slot and retries count against the rate limit.
 *
 * Retried: 408, 409, 429, 5xx, timeouts, dropped connections and malformed bodies (a body that is
 * not JSON or fails `validate`). Not retried: other 4xx, which mean the request itself is wrong.
 *
 * With several replicas, each attempt goes to the replica in service with the fewest outstanding
 * requests (queued or in flight), and a retry to another replica than the one that just failed when
 * one is in service. A replica is taken out after a refused connection or 3 failed attempts in a row
 * (5xx, timeouts, dropped connections, malformed bodies; not 429, which is a busy replica, not a
 * broken one), for retry_min_delay_ms doubling with each consecutive outage (capped at
 * retry_max_delay_ms); then one request probes it: a success puts it back, a failure takes it out again
 * for twice as long. A replica the identity check could not reach is held out (`holdOut`) until
 * the check passes (`admit`): only then does it get routed requests. Nothing here is a load balancer
 * library's job: p-queue and p-retry do the queueing and retrying; only the choice of replica is ours
 * (no npm package does least-outstanding over fetch with health).
 */
import PQueue from 'p-queue';
import pRetry, { AbortError } from 'p-retry';
import { RunError, describeError } from '../../errors.js';
import type { ReplicaStats } from '../engine.js';

export type { ReplicaStats };

export interface HttpClientOptions {
  /** One base URL per replica of the same target. */
  baseUrls: readonly string[];
  /** Sent as `Authorization: Bearer …`; never logged or put in an error message. */
  apiKey?: string;
  /** Requests in flight per replica. */
  concurrency: number;
  /** Request starts per second per replica; 0 = unlimited. */
  requestsPerSecond: number;
  timeoutMs: number;
  maxRetries: number;
  retryMinDelayMs: number;
  retryMaxDelayMs: number;
  /** Called after each failed attempt that will be retried (for progress logs and tests). */
  onRetry?: (event: { path: string; attempt: number; reason: string }) => void;
  /** Called when a replica is taken out of service or put back (fleets only). */
  onReplicaChange?: (event: ReplicaChange) => void;
}

/**
 * A replica taken out of service (`out`, for `outMs`; without `outMs`, held out until it passes the
 * identity check) or put back after a successful probe or identity check (`in`).
 */
export interface ReplicaChange {
  baseUrl: string;
  state: 'out' | 'in';
  reason?: string;
  outMs?: number;
}

/** One attempt's failure that is worth another try. */
class TransientError extends Error {
  constructor(
    message: string,
    /** Server-requested wait (Retry-After), in milliseconds. */
    readonly retryAfterMs?: number,
    /** How the failure bears on the replica's health. */
    readonly health: 'busy' | 'failing' | 'unreachable' = 'failing',
  ) {
    super(message);
  }
}

const RETRY_STATUSES = new Set([408, 409, 429]);
/** Failed attempts in a row that take a replica out of service. */
const FAILURE_STREAK = 3;
/** Network errors that mean nothing is listening: the replica is taken out at once. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** A queued attempt whose replica went out of service while it waited: send it elsewhere. */
const REROUTE = Symbol('reroute');

class Replica {
  readonly queue: PQueue;
  readonly stats: ReplicaStats;
  failureStreak = 0;
  /** When it may be probed again; 0 while in service. */
  outUntilMs = 0;
  /** Consecutive outages, for the backoff. */
  outages = 0;
  /** A probe is in flight: no other request goes there until it ends. */
  probing = false;
  /** Passed the identity check (or was never held out): only admitted replicas get routed requests. */
  admitted = true;
  lastError: string | undefined;

  constructor(
    readonly baseUrl: string,
    options: HttpClientOptions,
  ) {
    const rateLimit =
      options.requestsPerSecond > 0
        ? { intervalCap: 1, interval: Math.max(1, Math.round(1000 / options.requestsPerSecond)) }
        : {};
    this.queue = new PQueue({ concurrency: options.concurrency, ...rateLimit });
    this.stats = { baseUrl, requests: 0, tokens: 0, failedAttempts: 0, timesTakenOut: 0 };
  }

  get outstanding(): number {
    return this.queue.size + this.queue.pending;
  }

  get inService(): boolean {
    return this.outUntilMs === 0;
  }

  /** Admitted, and in service or out with its probe due and not yet sent. */
  usable(nowMs: number): boolean {
    return this.admitted && (this.inService || (nowMs >= this.outUntilMs && !this.probing));
  }

  url(path: string): string {
    return `${this.baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
  }
}

export class HttpClient {
  private readonly replicas: Replica[];
  private readonly closing = new AbortController();
  /** Rotates the start of the least-outstanding search, so ties spread over the replicas. */
  private nextTie = 0;
  /**
   * Set by a fleet's identity check: told when a replica goes out of service, which then stays out of
   * routing until `admit` (a replica that restarts may come back serving other weights).
   */
  onOutOfService?: (index: number) => void;

  constructor(private readonly options: HttpClientOptions) {
    if (options.baseUrls.length === 0) throw new Error('HttpClient needs at least one base URL');
    this.replicas = options.baseUrls.map((baseUrl) => new Replica(baseUrl, options));
  }

  /** The replicas' base URLs, in configured order. */
  get baseUrls(): string[] {
    return this.replicas.map((replica) => replica.baseUrl);
  }

  /**
   * Take replica `index` out of routing until `admit(index)`: the identity check could not reach it
   * (`reason`), so it must pass the check before it serves a row.
   */
  holdOut(index: number, reason: string): void {
    const replica = this.replicas[index];
    if (!replica.admitted) return;
    replica.admitted = false;
    replica.stats.timesTakenOut++;
    this.options.onReplicaChange?.({ baseUrl: replica.baseUrl, state: 'out', reason });
  }

  /** The last failure of replica `index`, as quoted in errors (undefined if none yet). */
  lastErrorOf(index: number): string | undefined {
    return this.replicas[index].lastError;
  }

  /** Put a replica held out by `holdOut` back into routing (it passed the identity check). */
  admit(index: number): void {
    const replica = this.replicas[index];
    if (replica.admitted) return;
    Object.assign(replica, { admitted: true, outUntilMs: 0, outages: 0, failureStreak: 0 });
    this.options.onReplicaChange?.({ baseUrl: replica.baseUrl, state: 'in' });
  }

  /** What each replica did so far, in configured order. */
  replicaStats(): ReplicaStats[] {
    return this.replicas.map((replica) => ({ ...replica.stats }));
  }

  /**
   * POST `body` as JSON to `path` (relative to the base URL) of the best replica and return
   * `validate(parsed body)`; `validate` throws to reject a malformed body, which is retried.
   * `tokensOf` counts the result's tokens into the serving replica's stats.
   */
  async postJson<T>(
    path: string,
    body: unknown,
    validate: (json: unknown) => T,
    tokensOf?: (result: T) => number,
  ): Promise<T> {
    return this.request(path, JSON.stringify(body), validate, { tokensOf });
  }

  /** GET `path` from replica `index` only (the identity check), with the same retries. */
  async getJsonFrom<T>(index: number, path: string, validate: (json: unknown) => T): Promise<T> {
    return this.request(path, undefined, validate, { pinned: this.replicas[index] });
  }

  /** POST to replica `index` only (the identity check), with the same retries. */
  async postJsonTo<T>(index: number, path: string, body: unknown, validate: (json: unknown) => T): Promise<T> {
    return this.request(path, JSON.stringify(body), validate, { pinned: this.replicas[index] });
  }

  private async request<T>(
    path: string,
    payload: string | undefined,
    validate: (json: unknown) => T,
    how: { pinned?: Replica; tokensOf?: (result: T) => number },
  ): Promise<T> {
    let lastFailed: Replica | undefined;
    const tried = new Set<Replica>();
    const once = async (): Promise<T> => {
      for (;;) {
        const { replica, probe } = how.pinned ? { replica: how.pinned, probe: false } : this.pick(lastFailed);
        if (probe) replica.probing = true;
        tried.add(replica);
        const outcome = await replica.queue.add(async () => {
          // Went out of service while this attempt waited in its queue: another replica takes it.
          if (!how.pinned && !probe && !replica.inService && this.anyUsable(replica)) return REROUTE;
          return this.attempt(replica, path, payload, validate, probe);
        });
        if (outcome === REROUTE) continue;
        // Only routed requests are the replica's share of the work (not the identity check's).
        if (!how.pinned) {
          replica.stats.requests++;
          if (how.tokensOf) replica.stats.tokens += how.tokensOf(outcome as T);
        }
        return outcome as T;
      }
    };
    try {
      return await pRetry(
        async () => {
          try {
            return await once();
          } catch (error) {
            lastFailed = error instanceof AttemptFailure ? error.replica : undefined;
            throw error instanceof AttemptFailure ? error.cause : error;
          }
        },
        {
          retries: this.options.maxRetries,
          factor: 2,
          minTimeout: this.options.retryMinDelayMs,
          maxTimeout: this.options.retryMaxDelayMs,
          randomize: true, // jitter: each delay × a random factor in [1, 2]
          signal: this.closing.signal,
          shouldRetry: ({ error }) => error instanceof TransientError,
          onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
            if (!(error instanceof TransientError) || retriesLeft === 0) return;
            const where = this.replicas.length > 1 && lastFailed ? ` (${lastFailed.baseUrl})` : '';
            this.options.onRetry?.({ path, attempt: attemptNumber, reason: `${error.message}${where}` });
            if (error.retryAfterMs)
              await sleep(Math.min(error.retryAfterMs, this.options.retryMaxDelayMs), this.closing.signal);
          },
        },
      );
    } catch (error) {
      if (error instanceof TransientError) throw this.unavailable(path, error, [...tried]);
      if (this.closing.signal.aborted)
        throw new RunError(
          `${this.replicas[0].url(path)}: request cancelled because the openai target engine was closed`,
        );
      throw error;
    }
  }

  /** The error once the retry budget is spent: with a fleet, every replica tried and its last error. */
  private unavailable(path: string, last: TransientError, tried: Replica[]): RunError {
    const attempts = this.options.maxRetries + 1;
    const hint = 'check that the server is up and not overloaded; raise target.max_retries or target.timeout_ms';
    if (this.replicas.length === 1) {
      const message = `${this.replicas[0].url(path)}: still failing after ${attempts} attempts (last: ${last.message})`;
      return new RunError(message, hint, 'E_TARGET_UNAVAILABLE');
    }
    const lines = this.replicas.map((replica) => {
      const state = !replica.admitted ? 'held out' : replica.inService ? 'in service' : 'out of service';
      const lastError = replica.lastError ?? (tried.includes(replica) ? 'no error' : 'not tried');
      return `  ${replica.baseUrl} (${state}): ${lastError}`;
    });
    const count = this.replicas.length;
    const over = `${attempts} attempts over ${tried.length === count ? count : `${tried.length} of ${count}`} replicas`;
    const message = `${path}: still failing after ${over}:\n${lines.join('\n')}`;
    return new RunError(message, hint, 'E_TARGET_UNAVAILABLE');
  }

  /**
   * The replica for the next attempt: the one in service with the fewest outstanding requests,
   * avoiding `avoid` (where the last attempt failed) when another is usable; a replica whose probe is
   * due counts as usable and is probed; when every replica is out, the one due soonest is probed now
   * (the retry backoff spaces those attempts).
   */
  private pick(avoid: Replica | undefined): { replica: Replica; probe: boolean } {
    const nowMs = Date.now();
    const usable = this.replicas.filter((replica) => replica.usable(nowMs));
    const preferred = usable.length > 1 ? usable.filter((replica) => replica !== avoid) : usable;
    if (preferred.length === 0) {
      const admitted = this.replicas.filter((replica) => replica.admitted);
      // Every replica out and awaiting its identity check: the retry backoff waits for one to pass.
      if (admitted.length === 0)
        throw new TransientError('every replica is held out until it passes the identity check');
      const idle = admitted.filter((replica) => !replica.probing);
      const pool = idle.length ? idle : admitted;
      const soonest = pool.reduce((a, b) => (b.outUntilMs < a.outUntilMs ? b : a));
      return { replica: soonest, probe: !soonest.probing };
    }
    // A probe first: a recovered replica comes back as soon as possible.
    const due = preferred.find((replica) => !replica.inService);
    if (due) return { replica: due, probe: true };
    const start = this.nextTie++ % preferred.length;
    let best = preferred[start];
    for (let k = 1; k < preferred.length; k++) {
      const candidate = preferred[(start + k) % preferred.length];
      if (candidate.outstanding < best.outstanding) best = candidate;
    }
    return { replica: best, probe: false };
  }

  private anyUsable(except: Replica): boolean {
    const nowMs = Date.now();
    return this.replicas.some((replica) => replica !== except && replica.usable(nowMs));
  }

  /** Record an attempt's outcome in its replica's health. */
  private settle(replica: Replica, failure: TransientError | undefined, probe: boolean): void {
    if (probe) replica.probing = false;
    if (!failure) {
      replica.failureStreak = 0;
      if (!replica.inService) {
        replica.outUntilMs = 0;
        replica.outages = 0;
        // A held-out replica answering its identity check is back only when `admit` says so.
        if (this.replicas.length > 1 && replica.admitted)
          this.options.onReplicaChange?.({ baseUrl: replica.baseUrl, state: 'in' });
      }
      return;
    }
    replica.stats.failedAttempts++;
    replica.lastError = failure.message;
    if (failure.health === 'busy') return;
    replica.failureStreak++;
    const broken = failure.health === 'unreachable' || replica.failureStreak >= FAILURE_STREAK || probe;
    if (!broken || this.replicas.length === 1 || (!replica.inService && !probe)) return;
    replica.outages++;
    replica.stats.timesTakenOut++;
    const outMs = Math.min(
      this.options.retryMinDelayMs * 2 ** (replica.outages - 1),
      Math.max(this.options.retryMaxDelayMs, this.options.retryMinDelayMs),
    );
    replica.outUntilMs = Date.now() + outMs;
    this.options.onReplicaChange?.({ baseUrl: replica.baseUrl, state: 'out', reason: failure.message, outMs });
    if (this.onOutOfService && replica.admitted) {
      replica.admitted = false;
      this.onOutOfService(this.replicas.indexOf(replica));
    }
  }

  /** Cancel every queued and in-flight request. */
  close(): void {
    for (const replica of this.replicas) replica.queue.clear();
    this.closing.abort();
  }

  private async attempt<T>(
    replica: Replica,
    path: string,
    payload: string | undefined,
    validate: (json: unknown) => T,
    probe: boolean,
  ): Promise<T> {
    try {
      const result = await this.attemptOnce(replica.url(path), payload, validate);
      this.settle(replica, undefined, probe);
      return result;
    } catch (error) {
      if (error instanceof TransientError) {
        this.settle(replica, error, probe);
        throw new AttemptFailure(replica, error);
      }
      // The replica answered (a 4xx, a fatal body): it is alive.
      this.settle(replica, undefined, probe);
      throw error;
    }
  }

  private async attemptOnce<T>(url: string, payload: string | undefined, validate: (json: unknown) => T): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
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
      const method = payload === undefined ? 'GET' : 'POST';
      const response = await fetch(url, { method, headers, body: payload, signal: attempt.signal });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      text = await response.text(); // the body read shares the attempt's timeout
    } catch (error) {
      if (this.closing.signal.aborted) throw new AbortError('closed');
      if (timedOut) throw new TransientError(`no answer within ${this.options.timeoutMs} ms`);
      const reason = networkReason(error);
      const health = UNREACHABLE_CODES.has(reason) ? 'unreachable' : 'failing';
      throw new TransientError(`connection failed (${reason})`, undefined, health);
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
      if (RETRY_STATUSES.has(status) || status >= 500) {
        const health = status === 429 ? 'busy' : 'failing';
        throw new TransientError(quoted, retryAfterMs(retryAfter), health);
      }
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

/** A transient failure and the replica it happened on (unwrapped before p-retry sees it). */
class AttemptFailure extends Error {
  constructor(
    readonly replica: Replica,
    override readonly cause: TransientError,
  ) {
    super(cause.message);
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

/**
 * Wait `ms`, or less when `signal` aborts (never rejects). `background`: the timer alone does not keep
 * the process alive (a check nobody awaits must not hold a finished command open).
 */
export function sleep(ms: number, signal: AbortSignal, background = false): Promise<void> {
  return new Promise((resolve) => {
    // Each wait removes its listener when it ends, so many waits on one engine's signal leave none behind.
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (background) timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
