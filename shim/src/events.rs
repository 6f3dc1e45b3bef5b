//! Task events to containerd, through an injectable sender.
//!
//! The service only calls [`EventSender::send`]; in production [`Publisher`] queues
//! the event for one thread that forwards it, in order, to containerd's ttrpc
//! `Events.Forward` (the publisher of the containerd-shim crate), so an RPC never
//! waits on containerd. Unit tests plug in a recorder.

use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::Context;
use containerd_shim_protos::protobuf::MessageDyn;

pub type Event = Box<dyn MessageDyn>;

pub trait EventSender: Send + Sync {
    fn send(&self, topic: &'static str, event: Event);
}

pub struct Publisher {
    tx: Mutex<Sender<(&'static str, Event)>>,
}

impl Publisher {
    pub fn new(remote: RemotePublisher, namespace: String) -> Self {
        let (tx, rx) = channel::<(&'static str, Event)>();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                for (topic, event) in rx {
                    if let Err(e) = remote.publish(Context::default(), topic, &namespace, event) {
                        log::warn!("publish {topic}: {e}");
                    }
                }
            })
            .expect("spawn the events thread");
        Publisher { tx: Mutex::new(tx) }
    }
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
