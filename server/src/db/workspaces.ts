// Workspaces: one customer account each.
import type { DB } from './open.js';
import { perDb } from './prepare.js';

export interface WorkspaceRow {
  id: string;
  name: string;
  created_at: number;
}

const s = perDb((db) => ({
  insert: db.prepare('INSERT INTO workspaces (id, name, created_at) VALUES (@id, @name, @created_at)'),
  byId: db.prepare('SELECT * FROM workspaces WHERE id = ?'),
  firstTwo: db.prepare('SELECT * FROM workspaces ORDER BY created_at LIMIT 2'),
  first: db.prepare('SELECT * FROM workspaces ORDER BY created_at, id LIMIT ?'),
  byName: db.prepare('SELECT * FROM workspaces WHERE name = ? ORDER BY created_at LIMIT 1'),
}));

export function insertWorkspace(db: DB, row: WorkspaceRow): void {
  s(db).insert.run(row);
}
export function findWorkspaceById(db: DB, id: string): WorkspaceRow | undefined {
  return s(db).byId.get(id) as WorkspaceRow | undefined;
}
export function findWorkspaceByName(db: DB, name: string): WorkspaceRow | undefined {
  return s(db).byName.get(name) as WorkspaceRow | undefined;
}
/** The workspace when exactly one exists, else null (none, or ambiguous). */
export function findOnlyWorkspace(db: DB): WorkspaceRow | null | 'many' {
  const rows = s(db).firstTwo.all() as WorkspaceRow[];
  if (rows.length === 0) return null;
  return rows.length === 1 ? rows[0]! : 'many';
}

/** The oldest `limit` workspaces. */
export function firstWorkspaces(db: DB, limit: number): WorkspaceRow[] {
  return s(db).first.all(limit) as WorkspaceRow[];
}
