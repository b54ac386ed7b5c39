//! The resource words every command takes (`observe`, `recommend`, `simulate`, and their
//! completion), spelled as kubectl spells them: singular, plural and short names, an API
//! group suffix (`deployments.apps`), and the `TYPE/NAME` form (`deploy/wordpress`).

use std::fmt;
use std::str::FromStr;

/// A kind of resource behaviour can be grouped or selected by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Namespaces (host behaviour under `(host)`).
    Namespace,
    /// Nodes (host behaviour included).
    Node,
    /// Pods.
    Pod,
    /// Deployments.
    Deployment,
    /// StatefulSets.
    StatefulSet,
    /// DaemonSets.
    DaemonSet,
    /// Jobs.
    Job,
    /// CronJobs.
    CronJob,
    /// ReplicaSets (without a Deployment above them).
    ReplicaSet,
    /// Containers (`pod/container`).
    Container,
    /// Owning workloads of any kind.
    Workload,
}

/// Every resource, in the order help and errors list them.
pub const ALL: [Resource; 11] = [
    Resource::Namespace,
    Resource::Node,
    Resource::Pod,
    Resource::Deployment,
    Resource::StatefulSet,
    Resource::DaemonSet,
    Resource::Job,
    Resource::CronJob,
    Resource::ReplicaSet,
    Resource::Container,
    Resource::Workload,
];

impl Resource {
    /// kubectl's singular name, plural name, and short name if it has one.
    pub fn names(self) -> (&'static str, &'static str, Option<&'static str>) {
        match self {
            Resource::Namespace => ("namespace", "namespaces", Some("ns")),
            Resource::Node => ("node", "nodes", Some("no")),
            Resource::Pod => ("pod", "pods", Some("po")),
            Resource::Deployment => ("deployment", "deployments", Some("deploy")),
            Resource::StatefulSet => ("statefulset", "statefulsets", Some("sts")),
            Resource::DaemonSet => ("daemonset", "daemonsets", Some("ds")),
            Resource::Job => ("job", "jobs", None),
            Resource::CronJob => ("cronjob", "cronjobs", Some("cj")),
            Resource::ReplicaSet => ("replicaset", "replicasets", Some("rs")),
            Resource::Container => ("container", "containers", None),
            Resource::Workload => ("workload", "workloads", None),
        }
    }

    /// The plural name (`deployments`).
    pub fn plural(self) -> &'static str {
        self.names().1
    }

    /// The API group kubectl accepts as a suffix (`deployments.apps`), if any.
    fn group(self) -> Option<&'static str> {
        match self {
            Resource::Deployment
            | Resource::StatefulSet
            | Resource::DaemonSet
            | Resource::ReplicaSet => Some("apps"),
            Resource::Job | Resource::CronJob => Some("batch"),
            _ => None,
        }
    }

    /// The owner kind recorded for a workload of this resource (`StatefulSet`); `Pod` for
    /// pods, `None` for the others.
    pub fn owner_kind(self) -> Option<&'static str> {
        Some(match self {
            Resource::Pod => "Pod",
            Resource::Deployment => "Deployment",
            Resource::StatefulSet => "StatefulSet",
            Resource::DaemonSet => "DaemonSet",
            Resource::Job => "Job",
            Resource::CronJob => "CronJob",
            Resource::ReplicaSet => "ReplicaSet",
            _ => return None,
        })
    }

    /// Whether resources of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Resource::Namespace | Resource::Node)
    }

    /// Every word accepted for some resource: singular, plural and short names.
    pub fn words() -> Vec<&'static str> {
        ALL.iter()
            .flat_map(|r| {
                let (one, many, short) = r.names();
                [Some(one), Some(many), short]
            })
            .flatten()
            .collect()
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.names().0)
    }
}

/// A resource word or `TYPE/NAME` that is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// Not one of kubectl's names for a resource this plugin knows.
    #[error("unknown resource type {word:?}: expected one of {}", accepted())]
    Unknown {
        /// The word given.
        word: String,
    },
    /// `TYPE/NAME` and a NAME argument at once.
    #[error("there is no need to give a name as a separate argument when passing {0:?} in TYPE/NAME form")]
    NameTwice(String),
    /// `TYPE/` without a name.
    #[error("{0:?}: expected TYPE/NAME with a name after the slash")]
    EmptyName(String),
}

/// `namespaces (ns), nodes (no), …, workloads`, for errors and help.
pub fn accepted() -> String {
    let list: Vec<String> = ALL
        .iter()
        .map(|r| match r.names() {
            (_, many, Some(short)) => format!("{many} ({short})"),
            (_, many, None) => many.to_string(),
        })
        .collect();
    format!("{} (singular or plural)", list.join(", "))
}

impl FromStr for Resource {
    type Err = ResourceError;
    fn from_str(s: &str) -> Result<Self, ResourceError> {
        let lower = s.trim().to_ascii_lowercase();
        for r in ALL {
            let (one, many, short) = r.names();
            let bare = match r.group() {
                Some(group) => lower
                    .strip_suffix(group)
                    .and_then(|w| w.strip_suffix('.'))
                    .unwrap_or(&lower),
                None => &lower,
            };
            if bare == one || bare == many || Some(bare) == short {
                return Ok(r);
            }
        }
        Err(ResourceError::Unknown {
            word: s.to_string(),
        })
    }
}

/// A resource kind and, optionally, one resource's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The kind.
    pub resource: Resource,
    /// Only this resource.
    pub name: Option<String>,
}

impl Target {
    /// Parses kubectl's `TYPE [NAME]` or `TYPE/NAME`.
    pub fn parse(resource: &str, name: Option<&str>) -> Result<Self, ResourceError> {
        match resource.split_once('/') {
            Some((kind, n)) => {
                if name.is_some() {
                    return Err(ResourceError::NameTwice(resource.to_string()));
                }
                if n.is_empty() {
                    return Err(ResourceError::EmptyName(resource.to_string()));
                }
                Ok(Target {
                    resource: kind.parse()?,
                    name: Some(n.to_string()),
                })
            }
            None => Ok(Target {
                resource: resource.parse()?,
                name: name.map(str::to_string),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kubectl_name_parses_to_its_resource() {
        for r in ALL {
            let (one, many, short) = r.names();
            for word in [Some(one), Some(many), short].into_iter().flatten() {
                assert_eq!(word.parse::<Resource>(), Ok(r), "{word}");
                assert_eq!(word.to_uppercase().parse::<Resource>(), Ok(r), "{word}");
            }
        }
        assert_eq!("deployments.apps".parse(), Ok(Resource::Deployment));
        assert_eq!("cj.batch".parse(), Ok(Resource::CronJob));
        assert!("pods.apps".parse::<Resource>().is_err());
    }

    #[test]
    fn an_unknown_word_lists_the_accepted_ones() {
        let e = "deploymnt".parse::<Resource>().err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("\"deploymnt\""), "{e}");
        assert!(
            e.contains("statefulsets (sts)") && e.contains("workloads"),
            "{e}"
        );
    }

    #[test]
    fn type_slash_name_is_one_resource() {
        assert_eq!(
            Target::parse("deploy/wordpress", None),
            Ok(Target {
                resource: Resource::Deployment,
                name: Some("wordpress".into())
            })
        );
        assert!(matches!(
            Target::parse("deploy/wordpress", Some("mysql")),
            Err(ResourceError::NameTwice(_))
        ));
        assert!(matches!(
            Target::parse("sts/", None),
            Err(ResourceError::EmptyName(_))
        ));
    }
}
