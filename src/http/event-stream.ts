/** What ends a long-lived event stream besides its client. */
export interface EventStreamBounds {
  /** Asked every RECHECK_MS; the stream ends when it says no (a signed-out session). */
  allowed?: (() => Promise<boolean>) | null;
  /**
   * The server is shutting down: the stream ends at once (the client reconnects, to another
   * server or to this one restarted), so it does not hold the drain for SHUTDOWN_GRACE_MS.
   */
  until?: AbortSignal;
}

/** The response of a server-sent event stream: never cached, never buffered by a proxy. */
export function eventStreamResponse(stream: ReadableStream<Uint8Array>, { allowed, until }: EventStreamBounds = {}): Response {
  const bounded = allowed || until ? whileAllowed(stream, allowed ?? (async () => true), RECHECK_MS, until) : stream;
  return new Response(bounded, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // nginx would otherwise hold events back in its buffer.
      "x-accel-buffering": "no",
      "x-content-type-options": "nosniff",
    },
  });
}

/** How often a long-lived stream asks whether its client may still have it. */
export const RECHECK_MS = 15_000;

/**
 * Bytes of events one stream may hold for a client that does not read them (its socket's buffers
 * full). Events are pushed as they happen, whether or not the client reads: without a bound, a
 * client that opens streams and stops reading makes the server keep every later event for each
 * of them (50 stalled streams held 500 MB after 9,000 changes). Past it the stream ends: the
 * client, if it is still there, reconnects (EventSource does, after `retry`) and starts afresh.
 */
export const EVENT_BACKLOG_BYTES = 1024 * 1024;

/** The queue of an event stream's source: its desiredSize is minus the bytes not yet taken by the client. */
export const EVENT_QUEUE: QueuingStrategy<Uint8Array> = { highWaterMark: 0, size: (chunk) => chunk?.byteLength ?? 0 };

/**
 * Queues `bytes` on a stream made with EVENT_QUEUE; false (and the stream errored, its backlog
 * dropped) when the client has left more than EVENT_BACKLOG_BYTES unread. The caller stops
 * writing then, as after its client went away.
 */
export function enqueueEvent(controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array): boolean {
  controller.enqueue(bytes);
  if ((controller.desiredSize ?? 0) >= -EVENT_BACKLOG_BYTES) return true;
  controller.error(new Error("the client is not reading its event stream"));
  return false;
}

/**
 * `stream`, ended as soon as `allowed` says no (asked every `everyMs`): an event stream outlives
 * the check made when it opened, and a session signed out or expired must not keep receiving.
 * A check that fails (the database is away) ends it too: the client reconnects and is asked anew.
 * `until` ends it when it aborts.
 */
export function whileAllowed(stream: ReadableStream<Uint8Array>, allowed: () => Promise<boolean>, everyMs = RECHECK_MS, until?: AbortSignal): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  let timer: ReturnType<typeof setInterval> | undefined;
  let ended = false;
  const end = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    if (ended) return;
    ended = true;
    clearInterval(timer);
    reader.cancel().catch(() => {});
    try {
      controller.close();
    } catch {
      // already closed
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (until?.aborted) return end(controller);
        until?.addEventListener("abort", () => end(controller), { once: true });
        timer = setInterval(() => {
          allowed().then(
            (yes) => yes || end(controller),
            () => end(controller),
          );
        }, everyMs);
      },
      async pull(controller) {
        const next = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (ended) return;
        if (next.done) end(controller);
        else controller.enqueue(next.value);
      },
      cancel(reason) {
        ended = true;
        clearInterval(timer);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
