//! System information for the report (details level 1 and up): what Qdrant's page
//! promises, "CPU, RAM, and disk type", and no more.
//!
//! In: the machine (`/etc/os-release`, `/proc`, `/sys`, `statvfs`, CPU feature detection)
//! and, optionally, the host's data directory. Out: distribution and version, container or
//! not, CPU cores and flags, RAM, the size and type of the disk holding the data directory,
//! and the process's resident memory. Never a host name, a user, a path or an address.
//! The machine-wide facts are read once per process; the disk and memory at each report.
//!
//! ```
//! let info = telemetry_core::usage::system::SystemInfo::detect(None);
//! assert!(info.cpu_cores >= 1);
//! assert_eq!(info.disk_type, None); // no data directory named
//! ```

use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

use crate::context::SystemContext;

/// What the report says about the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemInfo {
    /// The distribution's id (`debian`, `ubuntu`), or the OS (`macos`, `windows`).
    pub distribution: String,
    /// Its version (`12`), when known.
    pub distribution_version: Option<String>,
    /// Running in a container.
    pub is_container: bool,
    /// CPU cores this process may use.
    pub cpu_cores: u64,
    /// The CPU's vector-instruction flags that matter for speed (`avx2`, `neon`, ...).
    pub cpu_flags: Vec<String>,
    /// Physical memory in bytes, when known.
    pub ram_bytes: Option<u64>,
    /// Size in bytes of the file system holding the data directory.
    pub disk_bytes: Option<u64>,
    /// `ssd` or `rotational` for the disk holding the data directory, when the kernel says.
    pub disk_type: Option<String>,
    /// This process's resident memory in bytes, when known.
    pub resident_bytes: Option<u64>,
}

struct Machine {
    distribution: String,
    distribution_version: Option<String>,
    cpu_flags: Vec<String>,
    ram_bytes: Option<u64>,
}

fn machine() -> &'static Machine {
    static MACHINE: OnceLock<Machine> = OnceLock::new();
    MACHINE.get_or_init(|| {
        let (distribution, distribution_version) = distribution();
        Machine {
            distribution,
            distribution_version,
            cpu_flags: cpu_flags(),
            ram_bytes: ram_bytes(),
        }
    })
}

impl SystemInfo {
    /// Reads the machine; `data_dir` names the directory whose disk is described.
    pub fn detect(data_dir: Option<&Path>) -> SystemInfo {
        let m = machine();
        let (disk_bytes, disk_type) = match data_dir {
            Some(dir) => (disk_bytes(dir), disk_type(dir)),
            None => (None, None),
        };
        SystemInfo {
            distribution: m.distribution.clone(),
            distribution_version: m.distribution_version.clone(),
            is_container: SystemContext::get().in_container,
            cpu_cores: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            cpu_flags: m.cpu_flags.clone(),
            ram_bytes: m.ram_bytes,
            disk_bytes,
            disk_type,
            resident_bytes: resident_bytes(),
        }
    }
}

fn distribution() -> (String, Option<String>) {
    if let Ok(text) = std::fs::read_to_string("/etc/os-release") {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(id) = field("ID") {
            return (id, field("VERSION_ID"));
        }
    }
    (std::env::consts::OS.to_string(), None)
}

/// The flags Qdrant reports, the ones its vector search is built to use.
fn cpu_flags() -> Vec<String> {
    let mut flags: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { flags.push($f); } )* };
        }
        detect!(
            "sse", "sse2", "sse4.1", "sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512vl"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($f) { flags.push($f); } )* };
        }
        detect!("neon", "fp16", "sve");
    }
    flags.into_iter().map(str::to_string).collect()
}

fn ram_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: sysconf only reads system constants.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
    }
}

fn resident_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf only reads a system constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        (page > 0).then(|| pages * page as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(unix)]
fn disk_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut s) != 0 {
            return None;
        }
        Some(s.f_blocks as u64 * s.f_frsize as u64)
    }
}

#[cfg(not(unix))]
fn disk_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Linux says whether a block device rotates in `/sys/dev/block/MAJ:MIN/queue/rotational`
/// (for a partition, in its parent's `queue`). Overlay and network file systems have no
/// such device: the type is then unknown.
fn disk_type(dir: &Path) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(dir).ok()?.dev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        let base = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
        let flag = std::fs::read_to_string(base.join("queue/rotational"))
            .or_else(|_| std::fs::read_to_string(base.join("../queue/rotational")))
            .ok()?;
        match flag.trim() {
            "0" => Some("ssd".into()),
            "1" => Some("rotational".into()),
            _ => None,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        None
    }
}
