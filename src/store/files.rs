//! A clip's files (SPEC §12: the GIF, the MP4 and the poster JPEG), one file each in
//! `DATA_DIR/clips/`, outside sled, named `<key>.gif`, `<key>.mp4` and `<key>.jpg`.
//!
//! Why not in sled: sled 0.34 keeps any value over a quarter of its 512 KiB segment (a
//! typical clip's GIF is about 133 KB) as a blob file that it never fsyncs, so an acked GIF
//! was durable against `kill -9` but not against a power cut; and its log and blobs grew to
//! 60–100 times the unexpired clips in a soak. A file each is as small on disk as the
//! files themselves, goes when its clip is swept, and is made durable here on purpose.
//!
//! A clip's files are written and fsynced before its record is committed to sled, so a
//! clip that sled knows always has its files; a file without a record (a crash in between)
//! is an orphan, removed at the next start. The folder was `gifs/` while clips had only a
//! GIF; a store made then has it renamed at start.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use crate::clip::Rendition;

/// Most threads one batch fsyncs its files on: as many as the files of the clips the encoder
/// queue can hold (64 on 2 cores, three files each), so each file has its own. fsyncs of different files overlap on the disk
/// (one ext4 journal commit often covers several), so a batch costs about one fsync however
/// many clips it holds; two files on one thread would cost two.
const SYNC_THREADS: usize = 64 * Rendition::ALL.len();

/// One file to write: whose, which, and its bytes.
pub(super) type FileToWrite<'a> = (Uuid, Rendition, &'a [u8]);

/// The folder of clip files; cheap to clone.
#[derive(Clone)]
pub(super) struct ClipFolder {
    folder: Arc<PathBuf>,
}

impl ClipFolder {
    pub(super) fn open(data_dir: &Path) -> io::Result<Self> {
        let folder = data_dir.join("clips");
        let before_video = data_dir.join("gifs");
        if !folder.exists() && before_video.is_dir() {
            fs::rename(&before_video, &folder)?;
        }
        fs::create_dir_all(&folder)?;
        Ok(Self {
            folder: Arc::new(folder),
        })
    }

    fn path(&self, key: Uuid, rendition: Rendition) -> PathBuf {
        let mut name = Uuid::encode_buffer();
        let name = key.hyphenated().encode_lower(&mut name);
        self.folder
            .join(format!("{name}.{}", rendition.extension()))
    }

    /// Writes every file and returns once all of them, and their names in the folder, are
    /// on disk. Writing a file again replaces it with the same bytes.
    pub(super) fn write_durably(&self, to_write: &[FileToWrite<'_>]) -> io::Result<()> {
        if to_write.is_empty() {
            return Ok(());
        }
        // Written into the page cache first, so that every name is in the folder before the
        // folder's fsync starts.
        let files = to_write
            .iter()
            .map(|(key, rendition, bytes)| {
                let mut file = File::create(self.path(*key, *rendition))?;
                file.write_all(bytes)?;
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

    pub(super) fn read(&self, key: Uuid, rendition: Rendition) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(key, rendition)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Removes every file of each key; one already gone (or never made, for a clip from
    /// before videos) is no error. Not fsynced: a removal lost in a crash leaves an orphan,
    /// which the next start removes.
    pub(super) fn remove(&self, keys: impl IntoIterator<Item = Uuid>) -> io::Result<()> {
        for key in keys {
            for rendition in Rendition::ALL {
                match fs::remove_file(self.path(key, rendition)) {
                    Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                    _ => {}
                }
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
                .and_then(|name| name.rsplit_once('.'))
                .filter(|(_, extension)| Rendition::from_extension(extension).is_some())
                .and_then(|(key, _)| Uuid::try_parse(key).ok());
            if key.is_some_and(&is_stored) {
                continue;
            }
            fs::remove_file(&path)?;
            removed += 1;
        }
        Ok(removed)
    }
}
