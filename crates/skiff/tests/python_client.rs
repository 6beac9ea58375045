//! The official Python client (`pip install kubernetes`) against a real `skiff server`.

mod common;

use std::process::Command;

#[test]
fn python_client_crud_selectors_and_watch() {
    let s = common::Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_crud.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(s.kubeconfig())
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "python client test failed (scripts/setup.sh installs the kubernetes package):\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: ok"));
}
