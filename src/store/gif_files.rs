//! The GIF bytes: one file per clip in `DATA_DIR/gifs/`, outside sled.
//!
//! Why not in sled: sled 0.34 keeps any value over a quarter of its 512 KiB segment (a
//! typical clip's GIF is about 133 KB) as a blob file that it never fsyncs, so an acked GIF
//! was durable against `kill -9` but not against a power cut; and its log and blobs grew to
//! 60–100 times the unexpired clips in a soak. A file per GIF is as small on disk as the
//! GIFs themselves, goes when its clip is swept, and is made durable here on purpose.
//!
//! A GIF is written and fsynced before its clip's record is committed to sled, so a clip
//! that sled knows always has its bytes; a file without a record (a crash in between) is an
//! orphan, removed at the next start.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

/// Most threads one batch fsyncs its files on: as many as the encoder queue can hold clips
/// (64 on 2 cores), so each file has its own. fsyncs of different files overlap on the disk
/// (one ext4 journal commit often covers several), so a batch costs about one fsync however
/// many clips it holds; two files on one thread would cost two.
const SYNC_THREADS: usize = 64;

/// The folder of GIF files; cheap to clone.
#[derive(Clone)]
pub(super) struct GifFiles {
    folder: Arc<PathBuf>,
}

impl GifFiles {
    pub(super) fn open(data_dir: &Path) -> io::Result<Self> {
        let folder = data_dir.join("gifs");
        fs::create_dir_all(&folder)?;
        Ok(Self {
            folder: Arc::new(folder),
        })
    }

    fn path(&self, key: Uuid) -> PathBuf {
        let mut name = Uuid::encode_buffer();
        let name = key.hyphenated().encode_lower(&mut name);
        self.folder.join(format!("{name}.gif"))
    }

    /// Writes every GIF and returns once all of them, and their names in the folder, are on
    /// disk. Writing a key again replaces its file with the same bytes.
    pub(super) fn write_durably(&self, gifs: &[(Uuid, &[u8])]) -> io::Result<()> {
        if gifs.is_empty() {
            return Ok(());
        }
        // Written into the page cache first, so that every name is in the folder before the
        // folder's fsync starts.
        let files = gifs
            .iter()
            .map(|(key, gif)| {
                let mut file = File::create(self.path(*key))?;
                file.write_all(gif)?;
                Ok(file)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let per_thread = files.len().div_ceil(SYNC_THREADS);
        std::thread::scope(|scope| {
            let folder = scope.spawn(|| File::open(self.folder.as_path())?.sync_all());
            let syncs: Vec<_> = files
                .chunks(per_thread)
                .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(File::sync_data)))
                .collect();
            for sync in syncs {
                sync.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            }
            folder
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    pub(super) fn read(&self, key: Uuid) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(key)) {
            Ok(gif) => Ok(Some(gif)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Removes the GIF of each key; one already gone is no error. Not fsynced: a removal
    /// lost in a crash leaves an orphan, which the next start removes.
    pub(super) fn remove(&self, keys: impl IntoIterator<Item = Uuid>) -> io::Result<()> {
        for key in keys {
            match fs::remove_file(self.path(key)) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes every file in the folder whose key `is_stored` does not know; returns how
    /// many. Run at start, before anything is written.
    pub(super) fn remove_orphans(&self, is_stored: impl Fn(Uuid) -> bool) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.folder.as_path())? {
            let path = entry?.path();
            let key = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".gif"))
                .and_then(|key| Uuid::try_parse(key).ok());
            if key.is_some_and(&is_stored) {
                continue;
            }
            fs::remove_file(&path)?;
            removed += 1;
        }
        Ok(removed)
    }
}
