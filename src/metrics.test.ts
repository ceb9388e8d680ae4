import { describe, expect, it } from 'vitest';
import { KNOWN_SERVICES } from './login/services.js';
import { createMetrics } from './metrics.js';

function serviceLabels(text: string): Set<string> {
  const labels = new Set<string>();
  for (const match of text.matchAll(/^postern_auth_attempts_total\{[^}]*service="([^"]*)"/gm))
    labels.add(match[1] ?? '');
  return labels;
}

describe('createMetrics', () => {
  // Every new service name made a new series (18,425 names: /metrics 15 KB →
  // 1.67 MB). Known services keep their label; every other name shares one `other` series.
  it('labels only the services postern knows, and every other name as other', async () => {
    const metrics = createMetrics({ hashQueueDepth: () => 0, hashThreads: 1 });
    for (const service of KNOWN_SERVICES) metrics.observeAuth(service, 'mailcow', 'ok', 0.001);
    for (let index = 0; index < 5000; index += 1) {
      metrics.observeAuth(`made-up-${index}`, 'none', 'user_disabled', 0.0001);
    }
    metrics.observeAuth('constructor', 'none', 'user_disabled', 0.0001);
    const text = await metrics.registry.metrics();
    expect(serviceLabels(text)).toEqual(new Set([...KNOWN_SERVICES, 'other']));
    expect(text).toContain('postern_auth_attempts_total{service="other",source="none",result="user_disabled"} 5001');
    expect(text).not.toContain('made-up-');
    expect(text.length).toBeLessThan(20_000);
  });

  it('keeps the size of /metrics independent of how many names were seen', async () => {
    const sizeAfter = async (names: number) => {
      const metrics = createMetrics({ hashQueueDepth: () => 0, hashThreads: 1 });
      for (let index = 0; index < names; index += 1) metrics.observeAuth(`svc${index}`, 'none', 'user_disabled', 0);
      return (await metrics.registry.metrics()).replace(/\d+(\.\d+)?(e[+-]?\d+)?/g, '0').length;
    };
    expect(await sizeAfter(10_000)).toBe(await sizeAfter(10));
  });
});
