//! Task events to containerd, through an injectable sender.
//!
//! The service only calls [`EventSender::send`]; in production [`Publisher`] queues
//! the event for one thread that forwards it, in order, to containerd's ttrpc
//! `Events.Forward`, so an RPC never waits on containerd. Unit tests plug in a
//! recorder.
//!
//! The connection lives only while events are queued: a ttrpc client keeps a
//! reader and a writer thread, and an idle shim sends nothing for hours, so the
//! thread drops the client when the queue runs empty and connects again for the
//! next event (a local connect, once per burst: create, start, exit).
//!
//! The event travels in an `Any` whose type URL is the message's protobuf name
//! (`containerd.events.TaskExit`), as Go's typeurl and containerd-shim's own
//! publisher write it. The name comes from [`Message::NAME`] rather than from the
//! message's reflection descriptor: asking for a descriptor makes protobuf parse
//! and index the whole file set behind it (`descriptor.proto` included), a few
//! hundred KiB of heap kept for the life of the process.

use std::sync::mpsc::{channel, Sender, TryRecvError};
use std::sync::Mutex;
use std::time::SystemTime;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::events::{Envelope, ForwardRequest};
use containerd_shim_protos::ttrpc::context::Context;
use containerd_shim_protos::{Client, EventsClient};

use crate::service::timestamp;

/// The protobuf package of every task event (`events/task.proto`).
const TASK_EVENTS_PACKAGE: &str = "containerd.events";

/// One task event, encoded, and the type URL containerd decodes it by.
pub struct Event {
    type_url: String,
    value: Result<Vec<u8>, String>,
}

impl Event {
    /// A message of `events/task.proto` (TaskCreate, TaskExit, …). Encoded here
    /// through the generic `Message` methods: the `MessageDyn` ones
    /// (`write_to_dyn`, `write_to_bytes_dyn`) ask the descriptor for a name and
    /// so build the reflection this module avoids.
    pub fn task<M: Message>(message: M) -> Event {
        Event {
            type_url: format!("{TASK_EVENTS_PACKAGE}.{}", M::NAME),
            value: message.write_to_bytes().map_err(|e| e.to_string()),
        }
    }

    pub fn type_url(&self) -> &str {
        &self.type_url
    }

    /// The message, if this event is an `M` (tests look into recorded events).
    pub fn decode<M: Message>(&self) -> Option<M> {
        let value = self.value.as_ref().ok()?;
        (self.type_url.rsplit('.').next() == Some(M::NAME))
            .then(|| M::parse_from_bytes(value).ok())
            .flatten()
    }

    fn into_any(self) -> Result<Any, String> {
        Ok(Any {
            type_url: self.type_url,
            value: self.value?,
            ..Default::default()
        })
    }
}

pub trait EventSender: Send + Sync {
    fn send(&self, topic: &'static str, event: Event);
}

pub struct Publisher {
    tx: Mutex<Sender<(&'static str, Event)>>,
}

impl Publisher {
    /// Connects to containerd's ttrpc address and starts the forwarding thread.
    pub fn connect(address: &str, namespace: String) -> Result<Self, String> {
        // Connected once here so that a wrong address fails the start.
        let first = events_client(address)?;
        let address = address.to_string();
        let (tx, rx) = channel::<(&'static str, Event)>();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                let mut client = Some(first);
                loop {
                    let (topic, event) = match rx.try_recv() {
                        Ok(item) => item,
                        Err(TryRecvError::Disconnected) => return,
                        Err(TryRecvError::Empty) => {
                            // Nothing queued: close the connection (and its
                            // threads) until the next event.
                            client = None;
                            match rx.recv() {
                                Ok(item) => item,
                                Err(_) => return,
                            }
                        }
                    };
                    if client.is_none() {
                        client = events_client(&address)
                            .map_err(|e| log::warn!("publish {topic}: {e}"))
                            .ok();
                    }
                    let Some(c) = client.as_ref() else { continue };
                    if let Err(e) = forward(c, topic, &namespace, event) {
                        log::warn!("publish {topic}: {e}");
                        client = None;
                    }
                }
            })
            .map_err(|e| format!("spawn the events thread: {e}"))?;
        Ok(Publisher { tx: Mutex::new(tx) })
    }
}

/// A ttrpc client of containerd's events service at `address`.
fn events_client(address: &str) -> Result<EventsClient, String> {
    let fd = containerd_shim::util::connect(address)
        .map_err(|e| format!("connect to {address}: {e}"))?;
    let client = Client::new(fd).map_err(|e| format!("ttrpc client on {address}: {e}"))?;
    Ok(EventsClient::new(client))
}

fn forward(
    client: &EventsClient,
    topic: &str,
    namespace: &str,
    event: Event,
) -> Result<(), String> {
    let envelope = Envelope {
        timestamp: timestamp(SystemTime::now()),
        namespace: namespace.to_string(),
        topic: topic.to_string(),
        event: Some(event.into_any()?).into(),
        ..Default::default()
    };
    let req = ForwardRequest {
        envelope: Some(envelope).into(),
        ..Default::default()
    };
    client
        .forward(Context::default(), &req)
        .map(drop)
        .map_err(|e| e.to_string())
}

impl EventSender for Publisher {
    fn send(&self, topic: &'static str, event: Event) {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((topic, event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::events::task::{TaskCreate, TaskExit, TaskOOM};
    use containerd_shim_protos::protobuf::MessageFull;

    #[test]
    fn type_url_is_the_full_protobuf_name_containerd_resolves() {
        // The descriptor (reflection) is the authority; production code avoids it.
        for (event, full) in [
            (
                Event::task(TaskExit::default()),
                TaskExit::descriptor().full_name().to_string(),
            ),
            (
                Event::task(TaskCreate::default()),
                TaskCreate::descriptor().full_name().to_string(),
            ),
            (
                Event::task(TaskOOM::default()),
                TaskOOM::descriptor().full_name().to_string(),
            ),
        ] {
            assert_eq!(event.type_url(), full);
        }
    }

    #[test]
    fn any_holds_the_encoded_message() {
        let exit = TaskExit {
            container_id: "c1".into(),
            exit_status: 7,
            ..Default::default()
        };
        let event = Event::task(exit.clone());
        assert_eq!(event.decode::<TaskExit>(), Some(exit.clone()));
        assert_eq!(
            event.decode::<TaskOOM>(),
            None,
            "decoded only as its own type"
        );
        let any = event.into_any().unwrap();
        assert_eq!(any.type_url, "containerd.events.TaskExit");
        assert_eq!(TaskExit::parse_from_bytes(&any.value).unwrap(), exit);
    }
}
