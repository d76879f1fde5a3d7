import type { Connection, RowDataPacket } from 'mysql2/promise';

/** Where the primary's binlog ends now (SHOW MASTER STATUS) and its GTID position. */
export async function primaryHead(conn: Connection): Promise<{ file: string; position: number; gtid: string }> {
  const [[row]] = (await conn.query('SHOW MASTER STATUS')) as [RowDataPacket[], unknown];
  const [[g]] = (await conn.query('SELECT @@gtid_binlog_pos AS g')) as [RowDataPacket[], unknown];
  return { file: String(row?.['File']), position: Number(row?.['Position']), gtid: String(g?.['g']) };
}
