//! The XML replies wharf reads itself, as S3-compatible servers really send them: AWS,
//! MinIO, Ceph RGW and Garage name ListParts' root `ListPartsResult`, moto
//! `ListPartsResponse`; the root's name is never checked, only the elements wharf needs.
//! Pure: text in, values or a cause out.

/// One page of ListParts: completed parts (number, ETag, size) and where the next page
/// starts, if the reply says it is truncated.
#[derive(Debug, PartialEq)]
pub(super) struct PartsPage {
    pub parts: Vec<(u16, String, u64)>,
    pub next_marker: Option<u16>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListPartsXml {
    #[serde(rename = "Part")]
    parts: Vec<PartXml>,
    is_truncated: Option<String>,
    next_part_number_marker: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct PartXml {
    part_number: u16,
    #[serde(rename = "ETag")]
    etag: String,
    size: u64,
}

/// A ListParts reply; `Err` names what could not be read.
pub(super) fn list_parts(text: &str) -> Result<PartsPage, String> {
    let page: ListPartsXml = quick_xml::de::from_str(text).map_err(|e| e.to_string())?;
    let mut parts = Vec::with_capacity(page.parts.len());
    for p in page.parts {
        if p.part_number == 0 || p.etag.is_empty() {
            return Err("a Part without PartNumber or ETag".into());
        }
        parts.push((p.part_number, p.etag, p.size));
    }
    let truncated = page
        .is_truncated
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("true"));
    // Some servers send an empty or zero marker on the last page.
    let next_marker = page
        .next_part_number_marker
        .and_then(|m| m.trim().parse::<u16>().ok())
        .filter(|&m| truncated && m > 0);
    Ok(PartsPage { parts, next_marker })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2026-12-05T10:00:00.000Z</LastModified>
    <ETag>"aa"</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>2</PartNumber><LastModified>2026-12-05T10:00:01.000Z</LastModified>
    <ETag>"bb"</ETag><Size>100</Size></Part>
</ListPartsResult>"#;

    // moto 5: another root name, the marker of the last page present but the page not
    // truncated, the StorageClass and Owner elements.
    const MOTO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <StorageClass>STANDARD</StorageClass>
  <Initiator><ID>x</ID><DisplayName>webfile</DisplayName></Initiator>
  <Owner><ID>x</ID><DisplayName>webfile</DisplayName></Owner>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>1</NextPartNumberMarker>
  <MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2026-12-05T10:00:00.000Z</LastModified>
    <ETag>"cc"</ETag><Size>8388608</Size></Part>
</ListPartsResponse>"#;

    #[test]
    fn list_parts_reads_aws_and_moto() {
        assert_eq!(
            list_parts(AWS).unwrap(),
            PartsPage {
                parts: vec![(1, "\"aa\"".into(), 5_242_880), (2, "\"bb\"".into(), 100)],
                next_marker: Some(2),
            }
        );
        assert_eq!(
            list_parts(MOTO).unwrap(),
            PartsPage {
                parts: vec![(1, "\"cc\"".into(), 8_388_608)],
                next_marker: None,
            }
        );
    }

    #[test]
    fn list_parts_of_no_parts_and_empty_markers() {
        let empty = "<ListPartsResult><IsTruncated>false</IsTruncated>\
                     <NextPartNumberMarker></NextPartNumberMarker></ListPartsResult>";
        assert_eq!(
            list_parts(empty).unwrap(),
            PartsPage {
                parts: vec![],
                next_marker: None
            }
        );
    }

    #[test]
    fn unreadable_list_parts_says_why() {
        assert!(list_parts("<html>503 Service Unavailable").is_err());
        assert!(
            list_parts("<ListPartsResult><Part><Size>1</Size></Part></ListPartsResult>")
                .unwrap_err()
                .contains("PartNumber")
        );
    }
}
