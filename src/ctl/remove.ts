/**
 * `remove CLUSTER`: delete everything the cluster has in the DCS, after three typed confirmations (there is no
 * --force, as in patronictl).
 */
import { UserError } from '../config/errors.js';
import type { Dcs } from '../dcs/dcs.js';
import { renderMembersTable, type ListFormat } from '../render/members.js';
import { buildMembersTable } from './list.js';
import type { ActionIo } from './actions.js';

export async function removeCluster(
  dcs: Dcs,
  io: ActionIo,
  req: { readonly clusterName: string; readonly format: ListFormat },
): Promise<boolean> {
  const cluster = await dcs.getCluster();
  io.out(
    renderMembersTable(
      buildMembersTable(cluster, req.clusterName, { extended: false, format: req.format }),
      req.format,
    ),
  );

  const ask = (message: string): Promise<string> => io.prompts.input(message, { flag: undefined });
  if ((await ask('Please confirm the cluster name to remove')) !== req.clusterName) {
    throw new UserError('Cluster names specified do not match');
  }
  const message = 'Yes I am aware';
  if (
    (await ask(
      `You are about to remove all information in DCS for ${req.clusterName}, please type: "${message}"`,
    )) !== message
  ) {
    throw new UserError(`You did not exactly type "${message}"`);
  }
  if (cluster.leader?.name) {
    if (
      (await ask('This cluster currently is healthy. Please specify the leader name to continue')) !==
      cluster.leader.name
    ) {
      throw new UserError('You did not specify the current leader of the cluster');
    }
  }
  return dcs.deleteCluster();
}
