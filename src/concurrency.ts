// Bounded concurrency over a list: at most `limit` calls of `work` in flight, items taken in
// order. A rejected call rejects the whole (like Promise.all); calls already started still run.

export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
