import { describe, expect, it } from 'vitest';
import { slidingLifetimeMs } from './session-lifetime.js';

const limits = { ttlSeconds: 100, maxSeconds: 1000 };
const SIGNED_IN = 1_000_000;
const at = (seconds: number) => SIGNED_IN + seconds * 1000;

describe('slidingLifetimeMs', () => {
  it('leaves a session alone while more than three quarters of its idle lifetime remain', () => {
    expect(slidingLifetimeMs(limits, SIGNED_IN, 100_000, at(0))).toBeUndefined();
    expect(slidingLifetimeMs(limits, SIGNED_IN, 75_001, at(25))).toBeUndefined();
  });

  it('extends a used session back to its full idle lifetime', () => {
    expect(slidingLifetimeMs(limits, SIGNED_IN, 75_000, at(25))).toBe(100_000);
    expect(slidingLifetimeMs(limits, SIGNED_IN, 1, at(500))).toBe(100_000);
  });

  it('never extends past the cap counted from sign-in', () => {
    expect(slidingLifetimeMs(limits, SIGNED_IN, 30_000, at(960))).toBe(40_000);
    // Less left to the cap than already remains: nothing to extend.
    expect(slidingLifetimeMs(limits, SIGNED_IN, 30_000, at(980))).toBeUndefined();
  });

  it('ends a session at its cap, however recently it was used', () => {
    expect(slidingLifetimeMs(limits, SIGNED_IN, 90_000, at(1000))).toBe(0);
    expect(slidingLifetimeMs(limits, SIGNED_IN, 90_000, at(5000))).toBe(0);
  });

  it('does not touch a key without an expiry', () => {
    expect(slidingLifetimeMs(limits, SIGNED_IN, -1, at(10))).toBeUndefined();
  });
});
