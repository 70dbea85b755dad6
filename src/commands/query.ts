import { Args, Flags } from '@oclif/core';
import type { MemberRole } from '../ctl/read-commands.js';
import type { QueryFormat } from '../ctl/query.js';
import { ROLE_CHOICES } from './action-base.js';
import { CtlCommand } from './base.js';

export default class Query extends CtlCommand {
  static override summary = 'Run SQL on a member of the cluster (the leader by default).';
  static override description = [
    "Connects to the chosen member's PostgreSQL (host and port from its conn_url in the DCS) and prints the rows",
    'of the last statement, tab-separated with a header by default. --role replica (or standby, primary,',
    'standby-leader) is double-checked with pg_is_in_recovery(). The user, password and database are libpq',
    'defaults ($PGUSER, $PGPASSWORD or ~/.pgpass, $PGDATABASE) unless -U, --password or -d are given. Errors are',
    'printed as a row "<time>\tERROR, SQLSTATE: <code>", as patronictl prints them, with exit status 0.',
    '',
    'As in patronictl, -c is the SQL and -d the database here: give the configuration file and DCS URL before',
    'the command name (pgwarden -c node.yml query -c "select 1") or as --config-file / --dcs-url.',
  ].join('\n');
  static override examples = [
    "<%= config.bin %> -c /etc/patroni/patroni.yml query -U postgres -c 'select now()'",
    "PGPASSWORD=secret <%= config.bin %> query demo -r replica -U postgres -c 'select pg_is_in_recovery()'",
    '<%= config.bin %> query demo -m node2 -f report.sql --format pretty -W',
  ];
  // -c and -d name the SQL and the database in patronictl's query: the global options keep their long names.
  static override baseFlags = {
    ...CtlCommand.baseFlags,
    'config-file': Flags.string({
      summary: 'Configuration file in patroni.yml format (-c before the command name).',
      helpGroup: 'GLOBAL',
    }),
    'dcs-url': Flags.string({
      aliases: ['dcs'],
      summary: "DCS to use instead of the file's (-d before the command name).",
      helpGroup: 'GLOBAL',
    }),
  };
  static override args = {
    cluster: Args.string({ description: 'Cluster name (default: scope from the configuration).' }),
  };
  static override flags = {
    command: Flags.string({ char: 'c', summary: 'The SQL commands to execute.' }),
    file: Flags.string({ char: 'f', summary: 'Execute the SQL commands from this file (- for stdin).' }),
    username: Flags.string({ char: 'U', summary: 'Database user name.' }),
    password: Flags.boolean({ summary: 'Ask for the password (needs a terminal).' }),
    dbname: Flags.string({ char: 'd', summary: 'Database name to connect to.' }),
    role: Flags.string({ char: 'r', summary: 'The role of the member to query.', options: ROLE_CHOICES }),
    member: Flags.string({ char: 'm', summary: 'Query this member.' }),
    format: Flags.string({
      summary: 'Output format.',
      options: ['pretty', 'tsv', 'json', 'yaml', 'yml'],
      default: 'tsv',
    }),
    delimiter: Flags.string({ summary: 'The column delimiter (tsv).', default: '\t' }),
    'watch-continuous': Flags.boolean({ char: 'W', summary: 'Repeat every 2 seconds.' }),
    watch: Flags.string({ char: 'w', summary: 'Repeat every SECONDS seconds.' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Query);
    const { runQuery } = await import('../ctl/query.js');
    const { terminalPrompter } = await import('../prompts/index.js');
    await runQuery(
      {
        clusterName: args.cluster,
        role: flags.role as MemberRole | undefined,
        member: flags.member,
        command: flags.command,
        file: flags.file,
        username: flags.username,
        askPassword: flags.password,
        dbname: flags.dbname,
        format: (flags.format === 'yml' ? 'yaml' : flags.format) as QueryFormat,
        delimiter: flags.delimiter,
        watchContinuous: flags['watch-continuous'],
        watchSeconds: flags.watch,
      },
      {
        config: await this.loadConfig(flags),
        prompts: terminalPrompter(),
        write: (t) => this.print(t),
      },
    );
  }
}
