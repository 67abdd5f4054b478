//! STUN: the checked view, attribute iteration, USERNAME, and the demux fast
//! path `binding_request_local_ufrag`, with the invariants the demux relies
//! on: a parsed message's attributes tile its body exactly, USERNAME is the
//! first attribute of type 6, and a ufrag is only ever returned for a
//! well-formed Binding request whose USERNAME starts with `<ufrag>:`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uringcast::wire::{
    ATTR_USERNAME, MAX_UFRAG_LEN, METHOD_BINDING, StunClass, StunView, binding_request_local_ufrag,
    is_binding_request,
};

fuzz_target!(|data: &[u8]| {
    let ufrag = binding_request_local_ufrag(data);
    let Ok(view) = StunView::parse(data) else {
        assert_eq!(ufrag, None, "a ufrag from a message that does not parse");
        assert!(!is_binding_request(data));
        return;
    };

    // Header fields.
    assert!(data.len() >= 20 && data[0] <= 3);
    assert_eq!((data.len() - 20) % 4, 0);
    assert_eq!(view.message_type(), u16::from_be_bytes([data[0], data[1]]));
    assert_eq!(&view.transaction_id()[..], &data[8..20]);
    assert!(view.method() <= 0x0fff);
    if view.is_binding_request() {
        assert_eq!(view.method(), METHOD_BINDING);
        assert_eq!(view.class(), StunClass::Request);
    }
    assert_eq!(is_binding_request(data), view.is_binding_request());

    // Attributes tile the body: each is 4 header bytes plus its value padded to 4.
    let mut offset = 20;
    let mut first_username = None;
    for (attr_type, value) in view.attributes() {
        let header = &data[offset..offset + 4];
        assert_eq!(attr_type, u16::from_be_bytes([header[0], header[1]]));
        assert_eq!(
            value.len(),
            usize::from(u16::from_be_bytes([header[2], header[3]]))
        );
        assert_eq!(value, &data[offset + 4..offset + 4 + value.len()]);
        if attr_type == ATTR_USERNAME && first_username.is_none() {
            first_username = Some(value);
        }
        offset += 4 + value.len().next_multiple_of(4);
    }
    assert_eq!(offset, data.len(), "attributes do not end at the end");
    assert_eq!(view.username(), first_username);

    // The fast path agrees with the view.
    match ufrag {
        Some(local) => {
            assert!(view.is_binding_request());
            assert!((1..=MAX_UFRAG_LEN).contains(&local.len()));
            assert!(!local.contains(&b':'));
            let username = view.username().expect("a ufrag without USERNAME");
            assert_eq!(username.get(..local.len()), Some(local));
            assert_eq!(username.get(local.len()), Some(&b':'));
        }
        None => {
            let expected = view.is_binding_request()
                && view.username().is_some_and(|u| {
                    u.iter()
                        .position(|&b| b == b':')
                        .is_some_and(|colon| (1..=MAX_UFRAG_LEN).contains(&colon))
                });
            assert!(
                !expected,
                "a Binding request with a usable USERNAME gave no ufrag"
            );
        }
    }
});
