import type { Connection, RowDataPacket } from 'mysql2/promise';

const SYSTEM_SCHEMAS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

/** `CHECKSUM TABLE ... EXTENDED` of every base table outside the system schemas, keyed `db.table`. */
export async function tableChecksums(conn: Connection): Promise<Record<string, string>> {
  const [tables] = await conn.query<RowDataPacket[]>(
    "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
  );
  const result: Record<string, string> = {};
  for (const row of tables) {
    const schema = String(row['s']);
    if (SYSTEM_SCHEMAS.has(schema)) continue;
    const name = `\`${schema}\`.\`${String(row['t'])}\``;
    const [sums] = await conn.query<RowDataPacket[]>(`CHECKSUM TABLE ${name} EXTENDED`);
    result[`${schema}.${String(row['t'])}`] = String(sums[0]?.['Checksum']);
  }
  return result;
}
