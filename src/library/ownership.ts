/**
 * Whether the media in storage belong to this database's library, asked before the orphan sweep
 * (src/storage/orphans.ts) deletes the files of videos the database does not know. Without it, a
 * server started with another `DATABASE_URL` on an existing DATA_DIR or bucket (a new, empty
 * PostgreSQL after running on SQLite; a typo in the database name) took every video's files for
 * orphans and deleted them an hour later.
 *
 * Each database has an id (the `library` table, made by its migration) and the media carry the
 * id of the library they belong to (`library-id`, in DATA_DIR or at the top of the bucket). The
 * sweep deletes only when the two agree. A store without the marker is claimed (the marker is
 * written) when nothing in the store is foreign to the database (a new library, or one whose
 * store holds only its own videos), or by a database that already held videos when its id was
 * made (an upgrade from before markers) and finds some of them in the store: not the demo
 * alone, which every database a server started on holds, with the same files under the same id
 * (a PostgreSQL once tried on an existing DATA_DIR held only that, and would otherwise have
 * claimed the SQLite library's media at the upgrade and deleted them all). Otherwise nothing is
 * deleted and the log says why, once.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { logger } from "../lib/log.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { DEMO_VIDEO_ID } from "./ids.ts";
import type { LibraryIdentity, VideoLibrary } from "./videos.ts";

export const LIBRARY_MARKER_KEY = "library-id";

const log = logger("storage");

export class StorageOwnership {
  private owned = false;
  private said = "";

  constructor(
    private readonly identity: () => Promise<LibraryIdentity>,
    /** Whether the database has a row for a video id (a failed video's too). */
    private readonly hasRow: (id: string) => Promise<boolean>,
    private readonly store: ObjectStore,
    /** A directory for the marker's file on its way into the store. */
    private readonly tmpDir: string,
    /** How the store is named in what the log says (`DATA_DIR /srv/spool`, `bucket spool`). */
    private readonly where: string,
  ) {}

  /** Whether this library owns the store; once it does, it does for the life of the process. */
  get confirmed(): boolean {
    return this.owned;
  }

  /**
   * Whether the sweep may delete the files of `unowned` (the ids in the store whose videos own no
   * files, whatever their age); `owned` are the ids in the store whose videos this database has.
   * Decides, and claims the store, the first time it can.
   */
  async mayDelete(unowned: readonly string[], owned: readonly string[] = []): Promise<boolean> {
    if (this.owned) return true;
    const library = await this.identity();
    const marker = await this.readMarker();
    if (marker === library.id) return (this.owned = true);
    if (marker !== null) {
      this.say(`${this.where} belongs to another library (${marker}) than this database's (${library.id}): is DATABASE_URL the database of these media? Files of videos this database does not know are kept, never swept as orphans`);
      return false;
    }
    const foreign: string[] = [];
    for (const id of unowned) if (!(await this.hasRow(id))) foreign.push(id);
    // An upgraded library's store holds its videos (and maybe orphans of its own, theirs to sweep).
    const upgrade = library.hadVideos && owned.some((id) => id !== DEMO_VIDEO_ID);
    if (foreign.length > 0 && !upgrade) {
      this.say(
        `${this.where} holds the files of ${foreign.length} video(s) this database has never known (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}): is DATABASE_URL the database of these media? They are kept, never swept as orphans. If they are leftovers to delete, write "${library.id}" to ${LIBRARY_MARKER_KEY} there`,
      );
      return false;
    }
    await this.writeMarker(library.id);
    log.info({ library: library.id }, `${this.where} is now marked as this library's (${LIBRARY_MARKER_KEY})`);
    return (this.owned = true);
  }

  private say(message: string): void {
    if (message === this.said) return;
    this.said = message;
    log.error(message);
  }

  private async readMarker(): Promise<string | null> {
    const info = await this.store.stat(LIBRARY_MARKER_KEY);
    if (!info) return null;
    if (info.size === 0) return "";
    const body = await this.store.read(LIBRARY_MARKER_KEY, { start: 0, end: Math.min(info.size, 1024) - 1 });
    return (await new Response(body.stream).text()).trim();
  }

  private async writeMarker(id: string): Promise<void> {
    const path = join(this.tmpDir, `${LIBRARY_MARKER_KEY}.${crypto.randomUUID()}`);
    // A failure is the sweep pass's to log ("orphan sweep failed"); the next pass tries again.
    try {
      await writeFile(path, `${id}\n`);
      await this.store.putFile(LIBRARY_MARKER_KEY, path, { type: "text/plain" });
    } finally {
      await rm(path, { force: true });
    }
  }
}

/** The ownership of `store` by `library`'s database; `where` names the store in the log. */
export function libraryOwnership(library: VideoLibrary, store: ObjectStore, where: string): StorageOwnership {
  return new StorageOwnership(() => library.identity(), async (id) => (await library.get(id)) !== undefined, store, library.storage.ownTmpDir, where);
}
