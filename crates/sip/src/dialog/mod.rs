//! Dialogs (RFC 3261 §12): state created from an INVITE and its 1xx/2xx, and the in-dialog
//! requests built from it (BYE, re-INVITE, ACK for a 2xx). [`Dialogs`] routes inbound
//! requests to their dialog and answers the ones that match none (481, case 024).

mod build;
mod table;

pub use table::{Dialogs, Routed};

use crate::message::Method;
use crate::message::{Message, NameAddr, Scheme, StatusCode, Uri};

/// What identifies a dialog: Call-ID and both tags (§12), from our side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an inbound request names: To tag is ours, From tag the peer's (§12.2.2).
    /// `None` if it has no To tag (not an in-dialog request) or lacks Call-ID or From tag.
    pub fn for_request(request: &Message) -> Option<DialogId> {
        let h = &request.headers;
        Some(DialogId {
            call_id: h.call_id()?.to_owned(),
            local_tag: h.to()?.tag()?.to_owned(),
            remote_tag: h.from()?.tag()?.to_owned(),
        })
    }
    /// The dialog an inbound response to our request names: From tag is ours, To tag the peer's.
    pub fn for_response(response: &Message) -> Option<DialogId> {
        let h = &response.headers;
        Some(DialogId {
            call_id: h.call_id()?.to_owned(),
            local_tag: h.from()?.tag()?.to_owned(),
            remote_tag: h.to()?.tag()?.to_owned(),
        })
    }
}

/// Early (after a 1xx with a To tag) or confirmed (after a 2xx), §12.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Why a dialog could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// The message lacks a header the dialog needs.
    #[error("cannot create a dialog: the {0} header is missing")]
    MissingHeader(&'static str),
    /// A tag is missing: the peer's (response To / request From) or ours.
    #[error("cannot create a dialog: the {0} tag is missing")]
    MissingTag(&'static str),
    /// The response cannot create a dialog (100 Trying, or a final ≥ 300, §12.1).
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(u16),
    /// The request is not an INVITE.
    #[error("only an INVITE creates a dialog here")]
    NotInvite,
}

/// One dialog (§12.1): identity, the two parties, CSeq counters, remote target and route set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Our party with our tag (From of our requests).
    pub local: NameAddr,
    /// The peer with its tag (To of our requests).
    pub remote: NameAddr,
    /// Our last CSeq number (§12.2.1.1: +1 per request, except ACK and CANCEL).
    pub local_cseq: u32,
    /// The peer's last CSeq number (§12.2.2: lower ones are rejected with 500).
    pub remote_cseq: Option<u32>,
    /// Request-URI of our requests: the peer's Contact (§12.1.1, §12.1.2).
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<NameAddr>,
    /// Our Contact, put into target-refresh requests (re-INVITE, UPDATE).
    pub local_contact: Option<NameAddr>,
    /// Whether the dialog was created with a SIPS Request-URI (§12.1.1).
    pub secure: bool,
}

impl Dialog {
    /// The UAC side, from our INVITE and a 1xx (with To tag) or 2xx response (§12.1.2): the
    /// route set is the Record-Route reversed, the remote target the response's Contact.
    pub fn uac(invite: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let status = response.status().unwrap_or(StatusCode(0));
        if !(101..300).contains(&status.0) {
            return Err(DialogError::NotDialogCreating(status.0));
        }
        let ih = &invite.headers;
        let rh = &response.headers;
        let remote = rh.to().ok_or(DialogError::MissingHeader("To"))?.clone();
        let remote_tag = remote
            .tag()
            .ok_or(DialogError::MissingTag("To"))?
            .to_owned();
        let local = ih.from().ok_or(DialogError::MissingHeader("From"))?.clone();
        let local_tag = local
            .tag()
            .ok_or(DialogError::MissingTag("From"))?
            .to_owned();
        let call_id = ih.call_id().ok_or(DialogError::MissingHeader("Call-ID"))?;
        let cseq = ih.cseq().ok_or(DialogError::MissingHeader("CSeq"))?.seq;
        let request_uri = invite.request_uri().ok_or(DialogError::NotInvite)?;
        // A 2xx MUST carry Contact (§13.3.1.4); a 1xx may lack it: fall back to the R-URI.
        let remote_target = rh
            .contact()
            .map(|c| c.uri.clone())
            .unwrap_or_else(|| request_uri.clone());
        let mut route_set: Vec<NameAddr> = rh.record_routes().cloned().collect();
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag,
                remote_tag,
            },
            state: if status.is_success() {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local,
            remote,
            local_cseq: cseq,
            remote_cseq: None,
            remote_target,
            route_set,
            local_contact: ih.contact().cloned(),
            secure: is_sips(request_uri),
        })
    }

    /// The UAS side, from the INVITE and the To tag we answer with (§12.1.1): the route set is
    /// the Record-Route in order, the remote target the INVITE's Contact. The dialog starts
    /// confirmed; mark it [`DialogState::Early`] if you answer with a 1xx first.
    pub fn uas(
        invite: &Message,
        local_tag: &str,
        local_contact: Option<NameAddr>,
    ) -> Result<Dialog, DialogError> {
        if invite.method() != Some(&Method::Invite) {
            return Err(DialogError::NotInvite);
        }
        let h = &invite.headers;
        let remote = h.from().ok_or(DialogError::MissingHeader("From"))?.clone();
        let remote_tag = remote
            .tag()
            .ok_or(DialogError::MissingTag("From"))?
            .to_owned();
        let mut local = h.to().ok_or(DialogError::MissingHeader("To"))?.clone();
        if local_tag.is_empty() {
            return Err(DialogError::MissingTag("local"));
        }
        local.set_tag(local_tag);
        let remote_target = h
            .contact()
            .map(|c| c.uri.clone())
            .ok_or(DialogError::MissingHeader("Contact"))?;
        let call_id = h.call_id().ok_or(DialogError::MissingHeader("Call-ID"))?;
        let cseq = h.cseq().ok_or(DialogError::MissingHeader("CSeq"))?.seq;
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            state: DialogState::Confirmed,
            local,
            remote,
            local_cseq: 0,
            remote_cseq: Some(cseq),
            remote_target,
            route_set: h.record_routes().cloned().collect(),
            local_contact,
            secure: invite.request_uri().is_some_and(is_sips),
        })
    }

    /// Updates the dialog from a response to a request inside it (or to the INVITE that
    /// created it): a 2xx confirms an early dialog and recomputes its route set (§13.2.2.4);
    /// a Contact refreshes the remote target (§12.2.1.2).
    pub fn update_from_response(&mut self, response: &Message) {
        let Some(status) = response.status() else {
            return;
        };
        if !(101..300).contains(&status.0) {
            return;
        }
        if let Some(c) = response.headers.contact() {
            self.remote_target = c.uri.clone();
        }
        if status.is_success() && self.state == DialogState::Early {
            let mut routes: Vec<NameAddr> = response.headers.record_routes().cloned().collect();
            routes.reverse();
            self.route_set = routes;
            self.state = DialogState::Confirmed;
        }
    }

    /// Checks an inbound in-dialog request (§12.2.2): a CSeq lower than the last one is out of
    /// order (500); a re-INVITE or UPDATE with Contact refreshes the remote target.
    pub fn accept_remote_request(&mut self, request: &Message) -> Result<(), StatusCode> {
        let Some(cseq) = request.headers.cseq() else {
            return Err(StatusCode::BAD_REQUEST);
        };
        let exempt = matches!(cseq.method, Method::Ack | Method::Cancel);
        if !exempt {
            if self.remote_cseq.is_some_and(|last| cseq.seq < last) {
                return Err(StatusCode::SERVER_ERROR);
            }
            self.remote_cseq = Some(cseq.seq);
        }
        if matches!(cseq.method, Method::Invite | Method::Update)
            && let Some(c) = request.headers.contact()
        {
            self.remote_target = c.uri.clone();
        }
        Ok(())
    }

    /// The URI of the next hop for our requests: the first Route if it is a loose router,
    /// else the remote target (§12.2.1.1). The shell resolves it (or uses a known flow).
    pub fn next_hop(&self) -> &Uri {
        match self.route_set.first() {
            Some(r) => &r.uri,
            None => &self.remote_target,
        }
    }
}

fn is_sips(uri: &Uri) -> bool {
    uri.as_sip().is_some_and(|u| u.scheme == Scheme::Sips)
}
