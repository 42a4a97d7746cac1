//! A Lambda function's share of this machine at a memory setting, for lambda-bench's runs "at
//! the template's MemorySize": memory capped at the setting, and CPU at the setting's share of
//! one core (Lambda gives a function one vCPU at 1,769 MB, and CPU in proportion below that),
//! with a Linux cgroup (v1's `cpu` and `memory` controllers, or v2's `cpu.max` and
//! `memory.max`). The process joins the cgroup between fork and exec, so its whole start runs
//! inside it.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The memory setting at which Lambda gives a function one full vCPU.
pub const MB_PER_VCPU: u32 = 1769;
/// The CFS period the quota is set against (the kernel's default).
const PERIOD_US: u64 = 100_000;

/// One cgroup per memory setting, removed when dropped.
pub struct Sandbox {
    dirs: Vec<PathBuf>,
    procs: Vec<PathBuf>,
}

impl Sandbox {
    /// A cgroup for `memory_mb`, or why there cannot be one here (no cgroup file system, or no
    /// right to make a cgroup).
    pub fn new(memory_mb: u32) -> Result<Sandbox, String> {
        let name = format!("nbfleet-bench-{memory_mb}mb-{}", std::process::id());
        let quota = PERIOD_US * u64::from(memory_mb) / u64::from(MB_PER_VCPU);
        let bytes = u64::from(memory_mb) * 1024 * 1024;
        let root = Path::new("/sys/fs/cgroup");
        let mut sandbox = Sandbox {
            dirs: vec![],
            procs: vec![],
        };
        if root.join("cgroup.controllers").exists() {
            let dir = root.join(&name);
            sandbox.make(&dir)?;
            write(&dir.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
            write(&dir.join("memory.max"), &bytes.to_string())?;
            write(&dir.join("memory.swap.max"), "0").ok();
            sandbox.procs.push(dir.join("cgroup.procs"));
        } else {
            let cpu = root.join("cpu").join(&name);
            sandbox.make(&cpu)?;
            write(&cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
            write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            let memory = root.join("memory").join(&name);
            sandbox.make(&memory)?;
            write(&memory.join("memory.limit_in_bytes"), &bytes.to_string())?;
            write(&memory.join("memory.swappiness"), "0").ok();
            sandbox.procs.push(cpu.join("cgroup.procs"));
            sandbox.procs.push(memory.join("cgroup.procs"));
        }
        Ok(sandbox)
    }

    fn make(&mut self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir(dir).map_err(|e| format!("cannot make the cgroup {}: {e}", dir.display()))?;
        self.dirs.push(dir.to_path_buf());
        Ok(())
    }

    /// Makes `cmd`'s process join the cgroup before it execs.
    pub fn enter(&self, cmd: &mut Command) -> Result<(), String> {
        let files = self
            .procs
            .iter()
            .map(|p| {
                File::options()
                    .write(true)
                    .open(p)
                    .map_err(|e| format!("open {}: {e}", p.display()))
            })
            .collect::<Result<Vec<File>, String>>()?;
        // SAFETY: between fork and exec the closure only calls write(2) on files opened above
        // (no allocation, no lock); "0" makes the writing process itself join the cgroup.
        unsafe {
            cmd.pre_exec(move || {
                for mut f in &files {
                    f.write_all(b"0")?;
                }
                Ok(())
            });
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot set {}: {e}", path.display()))
}
