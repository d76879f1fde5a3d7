/**
 * A report as `--json` prints it: a field with no value is `null`, never left out, so a script
 * reading `report["firstBad"]` finds the key whatever the archive holds (as in /lag).
 */
export function jsonOutput(report: unknown): string {
  return `${JSON.stringify(report, (_key, value: unknown) => (value === undefined ? null : value), 2)}\n`;
}
