//! A table of dialogs that routes inbound in-dialog requests (RFC 3261 §12.2.2).

use std::collections::HashMap;

use super::{Dialog, DialogId};
use crate::message::{Message, Method, StatusCode};

/// Where an inbound request belongs.
#[derive(Debug)]
pub enum Routed<'a> {
    /// It names a dialog of ours, and the dialog accepted it (CSeq in order).
    InDialog(&'a mut Dialog),
    /// No To tag: a new dialog-creating or out-of-dialog request for the TU.
    OutOfDialog,
    /// An ACK that matches no dialog: drop it (an ACK is never answered, §17).
    StrayAck,
    /// Answer with this response and do nothing else: 481 for a dialog we do not have
    /// (§12.2.2, case 024), 400 for a missing From tag, 500 for an out-of-order CSeq.
    Reject(Message),
}

/// Dialogs by id.
#[derive(Debug, Default)]
pub struct Dialogs {
    map: HashMap<DialogId, Dialog>,
}

impl Dialogs {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds (or replaces) a dialog.
    pub fn insert(&mut self, dialog: Dialog) {
        self.map.insert(dialog.id.clone(), dialog);
    }
    /// The dialog with this id.
    pub fn get(&self, id: &DialogId) -> Option<&Dialog> {
        self.map.get(id)
    }
    /// The dialog with this id, mutable.
    pub fn get_mut(&mut self, id: &DialogId) -> Option<&mut Dialog> {
        self.map.get_mut(id)
    }
    /// Removes a dialog (after BYE, or a 481/408 to our in-dialog request, §12.2.1.2).
    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        self.map.remove(id)
    }
    /// Number of dialogs.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Routes an inbound request. A request with a To tag must match a dialog on Call-ID and
    /// both tags — never on Call-ID alone, which in a B2BUA could name the other leg.
    pub fn route(&mut self, request: &Message) -> Routed<'_> {
        let h = &request.headers;
        let is_ack = request.method() == Some(&Method::Ack);
        if h.to().and_then(|t| t.tag()).is_none() {
            return Routed::OutOfDialog;
        }
        if h.from().and_then(|f| f.tag()).is_none() {
            if is_ack {
                return Routed::StrayAck;
            }
            let mut r = Message::response_to(request, StatusCode::BAD_REQUEST, None);
            r.set_reason_phrase("Missing From Tag");
            return Routed::Reject(r);
        }
        let Some(id) = DialogId::for_request(request) else {
            return Routed::OutOfDialog;
        };
        match self.map.get_mut(&id) {
            None if is_ack => Routed::StrayAck,
            None => Routed::Reject(Message::response_to(
                request,
                StatusCode::CALL_DOES_NOT_EXIST,
                None,
            )),
            Some(d) => match d.accept_remote_request(request) {
                Ok(()) => Routed::InDialog(d),
                Err(status) => Routed::Reject(Message::response_to(request, status, None)),
            },
        }
    }
}
