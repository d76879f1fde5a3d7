import type { Connection, RowDataPacket } from 'mysql2/promise';
import { waitFor } from './wait.js';

/** Where the primary's binlog ends now (SHOW MASTER STATUS) and its GTID position. */
export async function primaryHead(conn: Connection): Promise<{ file: string; position: number; gtid: string }> {
  const [[row]] = (await conn.query('SHOW MASTER STATUS')) as [RowDataPacket[], unknown];
  const [[g]] = (await conn.query('SELECT @@gtid_binlog_pos AS g')) as [RowDataPacket[], unknown];
  return { file: String(row?.['File']), position: Number(row?.['Position']), gtid: String(g?.['g']) };
}

/**
 * Rotates to a fresh binlog, commits `primer` there, waits for the server's BINLOG_CHECKPOINT that
 * names the fresh file, and commits `primer` again. After that checkpoint the server writes nothing
 * into the file on its own (it writes one only when the oldest file crash recovery needs changes),
 * so the next transaction follows a transaction's end, is followed by nothing, and ends exactly at
 * the head read after its COMMIT.
 */
export async function settleBinlog(conn: Connection, primer: string): Promise<void> {
  await conn.query('FLUSH BINARY LOGS');
  await conn.query(primer);
  const { file } = await primaryHead(conn);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [events] = (await conn.query('SHOW BINLOG EVENTS IN ?', [file])) as [RowDataPacket[], unknown];
    if (events.some((e) => e['Event_type'] === 'Binlog_checkpoint' && String(e['Info']).includes(file))) break;
    if (Date.now() > deadline) throw new Error(`no BINLOG_CHECKPOINT naming ${file} within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // Once more after the checkpoint, so the file's last event ends a transaction.
  await conn.query(primer);
}

/**
 * Purges every binlog file before `newest`. MariaDB keeps a file until its binlog checkpoint has
 * passed (crash recovery may need it), which a background thread writes a while after a
 * rotation: a single PURGE may leave it, so the PURGE is repeated until only `newest` is left.
 */
export async function purgeBinlogsTo(conn: Connection, newest: string): Promise<void> {
  await waitFor(`the purge up to ${newest} to take effect`, async () => {
    await conn.query(`PURGE BINARY LOGS TO '${newest}'`);
    const [left] = (await conn.query('SHOW BINARY LOGS')) as [RowDataPacket[], unknown];
    return left.length === 1 && left[0]?.['Log_name'] === newest ? true : undefined;
  });
}
