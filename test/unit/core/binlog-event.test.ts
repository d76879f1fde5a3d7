import { describe, expect, it } from 'vitest';
import { eventChecksumValid } from '../../../src/core/binlog-event.js';
import { fixtureEvents } from '../../support/fixtures.js';

// Goal: the checksum test (one CRC pass over the whole event, trailer included) accepts every
// real event and refuses any damage, in the body or in the trailer. Method: the captured fixture.
describe('eventChecksumValid', () => {
  it('accepts every real event and refuses every single flipped bit', () => {
    const events = fixtureEvents();
    expect(events.length).toBeGreaterThan(20);
    for (const { bytes } of events) {
      expect(eventChecksumValid(bytes)).toBe(true);
      for (const at of [0, 9, 19, bytes.length - 5, bytes.length - 4, bytes.length - 1]) {
        for (const bit of [0x01, 0x80]) {
          const damaged = Buffer.from(bytes);
          damaged[at] = (damaged[at] as number) ^ bit;
          expect(eventChecksumValid(damaged)).toBe(false);
        }
      }
    }
    expect(eventChecksumValid(Buffer.alloc(22))).toBe(false);
  });
});
