//! Just enough ISO-BMFF to take RFC 6381 codec strings from an init segment and to join media
//! fragments into one segment.
//!
//! Path read: `moov/trak/mdia/minf/stbl/stsd` of every track, whose first sample entry is `avc1`
//! (then its `avcC` gives profile, compatibility flags and level) or `mp4a` (then its `esds`
//! gives the object type and the AAC audio object type).

/// Size of a VisualSampleEntry's fixed fields before its child boxes.
const VISUAL_ENTRY_FIELDS: usize = 78;
/// Size of an AudioSampleEntry's fixed fields before its child boxes.
const AUDIO_ENTRY_FIELDS: usize = 28;

/// The codecs of every track of an init segment, in track order, comma-separated:
/// `avc1.64001f` or `avc1.64001f,mp4a.40.2`. Only `avc1` video and `mp4a` audio are accepted.
pub(crate) fn init_codecs(init: &[u8]) -> Result<String, String> {
    let moov = child(init, b"moov").ok_or("init segment has no moov")?;
    let mut codecs = Vec::new();
    for (_, trak) in Boxes::new(moov).filter(|(kind, _)| kind == b"trak") {
        let (kind, entry) = track_sample_entry(trak).ok_or("a track has no sample entry")?;
        codecs.push(match &kind {
            b"mp4a" => aac_entry_codecs(entry)?,
            _ => avc_entry_codecs(&kind, entry)?,
        });
    }
    if codecs.is_empty() {
        return Err("no sample entry in init segment".into());
    }
    Ok(codecs.join(","))
}

/// `init` + `pieces` joined: consecutive media segments of one track (each `styp`? `sidx`?
/// (`moof` `mdat`)+) as one segment: the first `styp`, no `sidx` (it would index only part of
/// the segment), every fragment in order.
pub(crate) fn join_fragments(pieces: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(pieces.iter().map(Vec::len).sum());
    for (index, piece) in pieces.iter().enumerate() {
        let mut rest = piece.as_slice();
        let mut fragments = 0;
        while !rest.is_empty() {
            let (kind, size) = box_header(rest).ok_or("malformed box in a media segment")?;
            let (whole, tail) = rest.split_at(size);
            let keep = match &kind {
                b"styp" => index == 0,
                b"sidx" => false,
                b"moof" => {
                    fragments += 1;
                    true
                }
                _ => true,
            };
            if keep {
                out.extend_from_slice(whole);
            }
            rest = tail;
        }
        if fragments == 0 {
            return Err("a media segment has no moof".into());
        }
    }
    Ok(out)
}

/// Duration in seconds of a media segment of the init segment's first track (the video track
/// when audio is muxed in): the sum of its samples' durations over every `moof`, in that track's
/// `mdhd` timescale. Sample durations come from `trun`, else `tfhd`, else `trex` defaults.
pub fn segment_duration(init: &[u8], segment: &[u8]) -> Result<f64, String> {
    let moov = child(init, b"moov").ok_or("init segment has no moov")?;
    let trak = child(moov, b"trak").ok_or("init segment has no track")?;
    let tkhd = child(trak, b"tkhd").ok_or("track has no tkhd")?;
    let track_id = read_u32(tkhd, if tkhd.first() == Some(&1) { 20 } else { 12 }).ok_or("malformed tkhd")?;
    let mdhd = child(child(trak, b"mdia").ok_or("track has no mdia")?, b"mdhd").ok_or("track has no mdhd")?;
    let timescale = read_u32(mdhd, if mdhd.first() == Some(&1) { 20 } else { 12 }).ok_or("malformed mdhd")?;
    if timescale == 0 {
        return Err("timescale 0".into());
    }
    let trex_default = child(moov, b"mvex")
        .into_iter()
        .flat_map(|mvex| Boxes::new(mvex).filter(|(kind, _)| kind == b"trex"))
        .find(|(_, trex)| read_u32(trex, 4) == Some(track_id))
        .and_then(|(_, trex)| read_u32(trex, 12))
        .unwrap_or(0);
    let mut ticks: u64 = 0;
    for (_, moof) in Boxes::new(segment).filter(|(kind, _)| kind == b"moof") {
        for (_, traf) in Boxes::new(moof).filter(|(kind, _)| kind == b"traf") {
            let tfhd = child(traf, b"tfhd").ok_or("traf has no tfhd")?;
            if read_u32(tfhd, 4) != Some(track_id) {
                continue;
            }
            let default = tfhd_default_duration(tfhd).unwrap_or(trex_default);
            for (_, trun) in Boxes::new(traf).filter(|(kind, _)| kind == b"trun") {
                ticks += trun_duration(trun, default).ok_or("malformed trun")?;
            }
        }
    }
    Ok(ticks as f64 / f64::from(timescale))
}

fn tfhd_default_duration(tfhd: &[u8]) -> Option<u32> {
    let flags = read_u32(tfhd, 0)? & 0x00ff_ffff;
    if flags & 0x08 == 0 {
        return None;
    }
    let mut offset = 8;
    if flags & 0x01 != 0 {
        offset += 8;
    }
    if flags & 0x02 != 0 {
        offset += 4;
    }
    read_u32(tfhd, offset)
}

fn trun_duration(trun: &[u8], default: u32) -> Option<u64> {
    let flags = read_u32(trun, 0)? & 0x00ff_ffff;
    let count = read_u32(trun, 4)?;
    if flags & 0x100 == 0 {
        return Some(u64::from(count) * u64::from(default));
    }
    let mut offset = 8 + if flags & 0x01 != 0 { 4 } else { 0 } + if flags & 0x04 != 0 { 4 } else { 0 };
    let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&bit| flags & bit != 0).count() * 4;
    let mut total = 0u64;
    for _ in 0..count {
        total += u64::from(read_u32(trun, offset)?);
        offset += per_sample;
    }
    Some(total)
}

fn read_u32(data: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(offset..offset.checked_add(4)?)?.try_into().ok()?))
}

/// (type, total size) of the box at the start of `data`, checked against its length.
fn box_header(data: &[u8]) -> Option<([u8; 4], usize)> {
    let size32 = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let size = match size32 {
        0 => data.len(),
        1 => usize::try_from(u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)).ok()?,
        n => usize::try_from(n).ok()?,
    };
    (size >= 8 && size <= data.len()).then_some((kind, size))
}

/// `avc1.PPCCLL` from an init segment whose sample entry is `avc1` (not `avc3`).
#[cfg(test)]
fn avc_codecs(init: &[u8]) -> Result<String, String> {
    let (kind, entry) = first_sample_entry(init).ok_or("no sample entry in init segment")?;
    avc_entry_codecs(&kind, entry)
}

fn avc_entry_codecs(kind: &[u8; 4], entry: &[u8]) -> Result<String, String> {
    if kind != b"avc1" {
        return Err(format!("video sample entry is {}, not avc1", String::from_utf8_lossy(kind.as_slice())));
    }
    let children = entry.get(VISUAL_ENTRY_FIELDS..).ok_or("truncated avc1 entry")?;
    let avcc = child(children, b"avcC").ok_or("avc1 entry has no avcC")?;
    match avcc {
        [1, profile, compat, level, ..] => Ok(format!("avc1.{profile:02x}{compat:02x}{level:02x}")),
        _ => Err("malformed avcC".into()),
    }
}

/// `mp4a.OO.A` from an init segment whose sample entry is `mp4a`.
#[cfg(test)]
fn aac_codecs(init: &[u8]) -> Result<String, String> {
    let (kind, entry) = first_sample_entry(init).ok_or("no sample entry in init segment")?;
    if &kind != b"mp4a" {
        return Err(format!("audio sample entry is {}, not mp4a", String::from_utf8_lossy(&kind)));
    }
    aac_entry_codecs(entry)
}

fn aac_entry_codecs(entry: &[u8]) -> Result<String, String> {
    let children = entry.get(AUDIO_ENTRY_FIELDS..).ok_or("truncated mp4a entry")?;
    let esds = child(children, b"esds").ok_or("mp4a entry has no esds")?;
    let (object_type, audio_object_type) = esds_types(esds.get(4..).unwrap_or_default()).ok_or("malformed esds")?;
    Ok(format!("mp4a.{object_type:02x}.{audio_object_type}"))
}

#[cfg(test)]
fn first_sample_entry(init: &[u8]) -> Option<([u8; 4], &[u8])> {
    track_sample_entry(child(child(init, b"moov")?, b"trak")?)
}

fn track_sample_entry(trak: &[u8]) -> Option<([u8; 4], &[u8])> {
    let mut data = trak;
    for kind in [b"mdia", b"minf", b"stbl", b"stsd"] {
        data = child(data, kind)?;
    }
    // stsd: version/flags (4) and entry count (4), then the entries as boxes.
    Boxes::new(data.get(8..)?).next()
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    Boxes::new(data).find(|(k, _)| k == kind).map(|(_, p)| p)
}

/// Iterator over sibling boxes: (type, payload). Stops at the first malformed header.
struct Boxes<'a> {
    rest: &'a [u8],
}

impl<'a> Boxes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = ([u8; 4], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let size32 = u32::from_be_bytes(self.rest.get(0..4)?.try_into().ok()?);
        let kind: [u8; 4] = self.rest.get(4..8)?.try_into().ok()?;
        let (header, size) = match size32 {
            0 => (8, self.rest.len()),
            1 => {
                let large = u64::from_be_bytes(self.rest.get(8..16)?.try_into().ok()?);
                (16, usize::try_from(large).ok()?)
            }
            n => (8, usize::try_from(n).ok()?),
        };
        if size < header || size > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let payload = &self.rest[header..size];
        self.rest = &self.rest[size..];
        Some((kind, payload))
    }
}

/// (objectTypeIndication, audio object type) from an ES_Descriptor.
fn esds_types(es_descriptor: &[u8]) -> Option<(u8, u8)> {
    let (tag, body, _) = descriptor(es_descriptor)?;
    if tag != 0x03 {
        return None;
    }
    let flags = *body.get(2)?;
    let mut skip = 3;
    if flags & 0x80 != 0 {
        skip += 2;
    }
    if flags & 0x40 != 0 {
        skip += 1 + usize::from(*body.get(skip)?);
    }
    if flags & 0x20 != 0 {
        skip += 2;
    }
    let (tag, config, _) = descriptor(body.get(skip..)?)?;
    if tag != 0x04 {
        return None;
    }
    let object_type = *config.first()?;
    let (tag, specific, _) = descriptor(config.get(13..)?)?;
    if tag != 0x05 {
        return None;
    }
    Some((object_type, specific.first()? >> 3))
}

/// One MPEG-4 descriptor: (tag, body, rest). Lengths use 7 bits per byte, high bit = more.
fn descriptor(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let mut length = 0usize;
    let mut index = 1;
    loop {
        let byte = *data.get(index)?;
        length = (length << 7) | usize::from(byte & 0x7f);
        index += 1;
        if byte & 0x80 == 0 || index > 4 {
            break;
        }
    }
    let end = index.checked_add(length)?;
    Some((tag, data.get(index..end)?, data.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let size = u32::try_from(payload.len() + 8).unwrap_or(u32::MAX);
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    fn init_with_entry(entry: Vec<u8>) -> Vec<u8> {
        let mut stsd = vec![0u8; 4];
        stsd.extend_from_slice(&1u32.to_be_bytes());
        stsd.extend(entry);
        let mut nested = mp4_box(b"stsd", &stsd);
        for kind in [b"stbl", b"minf", b"mdia", b"trak", b"moov"] {
            nested = mp4_box(kind, &nested);
        }
        let mut file = mp4_box(b"ftyp", b"isomiso6");
        file.extend(nested);
        file
    }

    fn visual_entry(kind: &[u8; 4]) -> Vec<u8> {
        let mut payload = vec![0u8; VISUAL_ENTRY_FIELDS];
        payload.extend(mp4_box(b"avcC", &[1, 0x64, 0x00, 0x1f, 0xff]));
        mp4_box(kind, &payload)
    }

    #[test]
    fn reads_profile_and_level_from_avcc() {
        let init = init_with_entry(visual_entry(b"avc1"));
        assert_eq!(avc_codecs(&init).as_deref(), Ok("avc1.64001f"));
    }

    #[test]
    fn refuses_avc3() {
        let init = init_with_entry(visual_entry(b"avc3"));
        assert!(avc_codecs(&init).is_err());
    }

    #[test]
    fn reads_aac_lc_from_esds() {
        // ES_Descriptor > DecoderConfigDescriptor(0x40) > DecoderSpecificInfo(AOT 2, 48 kHz, 2 ch).
        let specific = [0x05, 0x02, 0x11, 0x90];
        let mut config = vec![0x04, 13 + specific.len() as u8, 0x40, 0x15];
        config.extend_from_slice(&[0; 11]);
        config.extend_from_slice(&specific);
        let mut es = vec![0x03, 3 + config.len() as u8, 0, 1, 0];
        es.extend(config);
        let mut esds = vec![0u8; 4];
        esds.extend(es);
        let mut payload = vec![0u8; AUDIO_ENTRY_FIELDS];
        payload.extend(mp4_box(b"esds", &esds));
        let init = init_with_entry(mp4_box(b"mp4a", &payload));
        assert_eq!(aac_codecs(&init).as_deref(), Ok("mp4a.40.2"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(avc_codecs(&[0, 0, 0, 1, b'm', b'o', b'o', b'v']).is_err());
        assert!(aac_codecs(&[0xff; 64]).is_err());
        assert!(avc_codecs(&[]).is_err());
    }
}
