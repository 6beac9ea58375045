//! NodePorts: a host port (protocol, IP, port) can be used by one pod per node; the
//! wildcard IP conflicts with every IP.

use crate::framework::{Code, FilterResult, NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodePorts";
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let clash = pod
        .ports
        .iter()
        .any(|p| node.used_ports.iter().any(|u| u.conflicts(p)));
    if clash {
        Err(Status::new(Code::Unschedulable, NAME, REASON))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    fn with_port(name: &str, port: i32, ip: &str, proto: &str) -> std::sync::Arc<PodInfo> {
        pod(
            name,
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": port, "hostIP": ip, "protocol": proto}]}]}),
        )
    }

    #[test]
    fn host_port_conflicts() {
        let mut n = node("a", json!({}), "1", "1Gi");
        n.add_pod(with_port("x", 8080, "", "TCP"));
        let e = filter(&with_port("p", 8080, "10.0.0.1", "TCP"), &n).unwrap_err();
        assert_eq!(
            (e.code, e.reasons[0].as_ref()),
            (Code::Unschedulable, REASON)
        );
        assert!(filter(&with_port("p", 8080, "", "UDP"), &n).is_ok());
        assert!(filter(&with_port("p", 8081, "", "TCP"), &n).is_ok());
        n.remove_pod("default/x");
        assert!(filter(&with_port("p", 8080, "", "TCP"), &n).is_ok());
    }
}
