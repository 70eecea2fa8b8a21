//! The Debian package, built with cargo-deb from the release binary (`cargo deb --no-build`), then
//! taken apart with dpkg-deb: control fields, file list and modes, conffiles, the systemd unit and
//! maintainer scripts, and `hawkeye check` run from the extracted tree on the shipped config.
//! Needs cargo-deb (installed by scripts/setup.sh) and the release build (`cargo test --release`).


use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MODEL_IN_CONFIG: &str = "/usr/share/hawkeye/models/hawkeye_urban.onnx";
const WATER_IN_CONFIG: &str = "/usr/share/hawkeye/models/hawkeye_water.onnx";

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the .deb into `out_dir` and returns its path.
fn build_deb(out_dir: &Path) -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_hawkeye"));
    assert!(
        bin.ends_with("release/hawkeye"),
        "run with `cargo test --release`: cargo deb --no-build packages target/release/hawkeye, not {}",
        bin.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let version = Command::new(&cargo).args(["deb", "--version"]).output();
    assert!(
        matches!(&version, Ok(o) if o.status.success()),
        "cargo-deb is not installed: run scripts/setup.sh ({version:?})"
    );
    run(Command::new(&cargo)
        .current_dir(ROOT)
        .args(["deb", "--no-build", "--no-strip", "--fast", "--output"])
        .arg(out_dir));
    let debs: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "expected one .deb in {}: {debs:?}", out_dir.display());
    debs.into_iter().next().unwrap()
}

/// `dpkg-deb --info DEB` field value.
fn field<'a>(info: &'a str, name: &str) -> &'a str {
    let prefix = format!(" {name}: ");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} field in:\n{info}"))
        .trim()
}

/// `dpkg-deb --contents` rows: (path without the leading `.`, mode, owner).
fn contents(listing: &str) -> Vec<(String, String, String)> {
    listing
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let path = cols.last()?.strip_prefix('.')?;
            Some((path.to_string(), cols[0].to_string(), cols[1].to_string()))
        })
        .collect()
}

#[test]
fn cargo_deb_package_installs_hawkeye_its_runtime_config_and_service() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(tmp.path());

    // control fields
    let info = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb)));
    assert_eq!(field(&info, "Package"), "hawkeye");
    assert_eq!(field(&info, "Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    let arch = text(&run(Command::new("dpkg").arg("--print-architecture")));
    assert_eq!(field(&info, "Architecture"), arch.trim());
    let depends: Vec<&str> = field(&info, "Depends").split(',').map(|d| d.split_whitespace().next().unwrap()).collect();
    for p in [
        // run time, named in Cargo.toml
        "libgstreamer1.0-0",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-ugly",
        "gstreamer1.0-libav",
        "espeak-ng",
        "opencv-data",
        // from $auto (dpkg-shlibdeps on the binary): linked libraries
        "libc6",
        "libgstreamer-plugins-base1.0-0",
        "libopencv-core406",
        "libopencv-objdetect406",
    ] {
        assert!(depends.contains(&p), "Depends lacks {p}: {depends:?}");
    }

    // files, modes, owners
    let listing = text(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    let files = contents(&listing);
    let mode = |path: &str| -> &str {
        let (_, m, owner) = files
            .iter()
            .find(|(p, _, _)| p == path)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"));
        assert_eq!(owner, "0/0", "{path} owner");
        m
    };
    assert_eq!(mode("/usr/bin/hawkeye"), "-rwxr-xr-x");
    assert_eq!(mode("/usr/lib/hawkeye/libonnxruntime.so"), "-rw-r--r--");
    assert_eq!(mode("/etc/hawkeye/hawkeye.toml"), "-rw-r--r--");
    assert_eq!(mode("/usr/share/doc/hawkeye/README.md"), "-rw-r--r--");
    assert_eq!(mode("/usr/share/doc/hawkeye/copyright"), "-rw-r--r--");
    assert_eq!(mode(MODEL_IN_CONFIG), "-rw-r--r--");
    assert_eq!(mode("/usr/share/hawkeye/models/hawkeye_urban.toml"), "-rw-r--r--");
    assert_eq!(mode("/usr/share/hawkeye/models/hawkeye_water.toml"), "-rw-r--r--");
    for t in ["rtsp_h264", "rtsp_h265", "rtsp", "file", "rtmp", "srt"] {
        assert_eq!(mode(&format!("/usr/share/hawkeye/pipelines/{t}.pipeline")), "-rw-r--r--");
    }
    let unit = ["/lib/systemd/system/hawkeye.service", "/usr/lib/systemd/system/hawkeye.service"]
        .into_iter()
        .find(|u| files.iter().any(|(p, _, _)| p == u))
        .unwrap_or_else(|| panic!("no hawkeye.service under /lib or /usr/lib systemd/system:\n{listing}"));
    assert_eq!(mode(unit), "-rw-r--r--");
    for (p, m, owner) in &files {
        assert!(["-rw-r--r--", "-rwxr-xr-x", "drwxr-xr-x"].contains(&m.as_str()) && owner == "0/0", "{p}: {m} {owner}");
    }

    // conffile and maintainer scripts: enabled and started on install, stopped on removal
    let conffiles = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("conffiles")));
    assert_eq!(conffiles.lines().collect::<Vec<_>>(), ["/etc/hawkeye/hawkeye.toml"]);
    let postinst = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("postinst")));
    assert!(postinst.contains("deb-systemd-helper enable hawkeye.service"), "postinst does not enable:\n{postinst}");
    assert!(postinst.contains("_dh_action=start") && postinst.contains("deb-systemd-invoke $_dh_action hawkeye.service"),
        "postinst does not start:\n{postinst}");
    assert!(postinst.contains("/usr/bin/hawkeye check /etc/hawkeye/hawkeye.toml"), "postinst does not check:\n{postinst}");
    assert!(!postinst.contains("#DEBHELPER#"), "token left in postinst:\n{postinst}");
    let prerm = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("prerm")));
    assert!(prerm.contains("deb-systemd-invoke stop hawkeye.service"), "prerm does not stop:\n{prerm}");

    // the extracted tree
    let root = tmp.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let shipped_unit = std::fs::read_to_string(root.join(&unit[1..])).unwrap();
    assert_eq!(shipped_unit, std::fs::read_to_string(format!("{ROOT}/deploy/hawkeye.service")).unwrap());
    let ort = root.join("usr/lib/hawkeye/libonnxruntime.so");
    let ort_bytes = std::fs::read(&ort).unwrap();
    assert!(ort_bytes.starts_with(b"\x7fELF"), "{} is not an ELF library", ort.display());
    assert_eq!(ort_bytes.len() as u64, std::fs::metadata(format!("{ROOT}/.deps/onnxruntime/libonnxruntime.so")).unwrap().len());
    let config_path = root.join("etc/hawkeye/hawkeye.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(config.contains("state_dir = \"/var/lib/hawkeye\""), "{config}");
    assert!(config.contains(&format!("path = \"{MODEL_IN_CONFIG}\"")), "{config}");
    let check = |cfg: &Path| {
        Command::new(root.join("usr/bin/hawkeye"))
            .arg("check")
            .arg(cfg)
            .env("ORT_DYLIB_PATH", &ort)
            .output()
            .unwrap()
    };

    // The shipped config passes `hawkeye check` with the shipped model (its manifest matches by
    // sha256, the zone classes are the model's); the config is checked with the model's path in
    // the extracted tree, as nothing is installed under /usr here.
    let model = root.join(&MODEL_IN_CONFIG[1..]);
    assert_eq!(std::fs::read(&model).unwrap(), std::fs::read(format!("{ROOT}/models/hawkeye_urban.onnx")).unwrap());
    // and the water model the shipped config names for flooding zones
    let water = root.join(&WATER_IN_CONFIG[1..]);
    assert_eq!(std::fs::read(&water).unwrap(), std::fs::read(format!("{ROOT}/models/hawkeye_water.onnx")).unwrap());
    let with_model = tmp.path().join("hawkeye.toml");
    std::fs::write(&with_model, config.replace(MODEL_IN_CONFIG, model.to_str().unwrap()).replace(WATER_IN_CONFIG, water.to_str().unwrap())).unwrap();
    let out = check(&with_model);
    let summary = text(&out);
    assert!(out.status.success(), "shipped config fails check:\n{summary}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(summary.contains("config OK") && summary.contains("state    /var/lib/hawkeye"), "{summary}");
}
