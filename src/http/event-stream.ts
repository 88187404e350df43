/** The response of a server-sent event stream: never cached, never buffered by a proxy. */
export function eventStreamResponse(stream: ReadableStream<Uint8Array>): Response {
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // nginx would otherwise hold events back in its buffer.
      "x-accel-buffering": "no",
      "x-content-type-options": "nosniff",
    },
  });
}
