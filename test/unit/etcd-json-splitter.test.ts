/**
 * The etcd gateway's stream splitter (src/dcs/etcd3/gateway-transport.ts): whole JSON objects out of any chunking,
 * braces and quotes inside strings (escaped or not) left alone.
 */
import { describe, expect, it } from 'vitest';
import { JsonObjectSplitter } from '../../src/dcs/etcd3/gateway-transport.js';

const OBJECTS = [
  '{"result":{"header":{"revision":"12"},"events":[{"kv":{"key":"L3NlcnZpY2U=","value":"e30="}}]}}',
  '{"a":"brace } and { in a string","b":{"c":"escaped \\" quote }"}}',
  '{"d":"backslash at the end \\\\","e":[{},{"f":"\\\\\\"}"}]}',
];
const STREAM = `${OBJECTS[0]}\n${OBJECTS[1]}${OBJECTS[2]}\n`;

describe('JsonObjectSplitter', () => {
  it('finds every object of a stream handed over in one piece', () => {
    const out = new JsonObjectSplitter().push(STREAM);
    expect(out).toEqual(OBJECTS);
    for (const o of out) expect(() => JSON.parse(o) as unknown).not.toThrow();
  });

  it('finds the same objects whatever the stream is cut into', () => {
    for (let cut = 1; cut < STREAM.length; cut++) {
      const s = new JsonObjectSplitter();
      const out = [...s.push(STREAM.slice(0, cut)), ...s.push(STREAM.slice(cut))];
      expect(out, `cut at ${cut}`).toEqual(OBJECTS);
    }
    const s = new JsonObjectSplitter();
    const out = [...STREAM].flatMap((ch) => s.push(ch));
    expect(out).toEqual(OBJECTS);
  });
});
