import { describe, expect, it } from 'vitest';
import { binlogPositionOfInfo, parseXtrabackupInfo } from '../../../src/primary/base/mariabackup-info.js';

/** An xtrabackup_info as mariabackup 10.11.19 wrote it (--extra-lsndir) in a sandbox. */
const INFO = `uuid = 66574cce-edad-11f1-b6fe-02fc00000001
name = 
tool_name = mariabackup
tool_command = --defaults-file=/tmp/x/client.cnf --backup --stream=mbstream --datadir=/tmp/srv/data --target-dir=/tmp/t --extra-lsndir=/tmp/l
tool_version = 10.11.19-MariaDB
server_version = 10.11.19-MariaDB-0+deb12u1-log
start_time = 2026-12-01 17:34:01
end_time = 2026-12-01 17:34:02
binlog_pos = filename 'mysql-bin.000001', position '1620', GTID of the last change '0-1-7'
innodb_from_lsn = 0
innodb_to_lsn = 44894
format = mbstream
`;

// Goal: the coordinates a physical base restores from are exactly what mariabackup recorded.
describe('xtrabackup_info', () => {
  it('reads every key, and binlog_pos as coordinates and GTID', () => {
    const info = parseXtrabackupInfo(INFO);
    expect(info['tool_version']).toBe('10.11.19-MariaDB');
    expect(info['name']).toBe('');
    expect(info['innodb_to_lsn']).toBe('44894');
    expect(binlogPositionOfInfo(info)).toEqual({ binlog: { file: 'mysql-bin.000001', position: 1620 }, gtid: '0-1-7' });
  });

  it('a binlog_pos without GTID, with several domains, or absent', () => {
    expect(binlogPositionOfInfo({ binlog_pos: "filename 'b.000003', position '4'" })).toEqual({ binlog: { file: 'b.000003', position: 4 }, gtid: '' });
    expect(binlogPositionOfInfo({ binlog_pos: "filename 'b.000003', position '99', GTID of the last change '0-1-7,1-2-3'" })?.gtid).toBe('0-1-7,1-2-3');
    expect(binlogPositionOfInfo({})).toBeUndefined();
    expect(binlogPositionOfInfo({ binlog_pos: 'garbage' })).toBeUndefined();
  });
});
