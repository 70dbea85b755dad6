/**
 * misc.py `postgres_version_to_int`: `X.Y` (X >= 10) or `X.Y.Z` as PostgreSQL's integer form (`15.4` -> 150004);
 * otherwise the message Patroni gives, for the REST API (HTTP 400) and the CLI (an error) to report.
 */
export function postgresVersionToInt(version: string): number | string {
  const parts = version.split('.');
  if (parts.some((p) => !/^\s*[+-]?\d+\s*$/.test(p))) return `Invalid PostgreSQL version: ${version}`;
  const nums = parts.map((p) => Number.parseInt(p, 10));
  const [first = 0] = nums;
  if (nums.length < 2 || (nums.length === 2 && first < 10) || nums.length > 3) {
    return `Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: ${version}`;
  }
  if (nums.length === 2) nums.splice(1, 0, 0);
  return Number(nums.map((n) => String(n).padStart(2, '0')).join(''));
}
