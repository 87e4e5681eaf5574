import { NS, xml, type XmlElement } from '@parley/xmpp';

/** A service discovery identity (XEP-0030 §3.1). */
export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/**
 * What an entity (the server, an account, a component) says of itself in
 * service discovery (XEP-0030): identities, features and extended information
 * forms (XEP-0128). Modules add to it when they load and remove when they unload.
 */
export class DiscoInfo {
  private identities: DiscoIdentity[] = [];
  private features = new Map<string, number>();
  private forms: XmlElement[] = [];

  /** Adds a feature (a namespace or `var`); returns a function that removes it. Reference-counted. */
  addFeature(feature: string): () => void {
    this.features.set(feature, (this.features.get(feature) ?? 0) + 1);
    return () => {
      const n = (this.features.get(feature) ?? 1) - 1;
      if (n <= 0) this.features.delete(feature);
      else this.features.set(feature, n);
    };
  }

  /** Adds an identity; returns a function that removes it. */
  addIdentity(identity: DiscoIdentity): () => void {
    this.identities.push(identity);
    return () => {
      const i = this.identities.indexOf(identity);
      if (i >= 0) this.identities.splice(i, 1);
    };
  }

  /** Adds an extended information form (XEP-0128, a `jabber:x:data` result form). */
  addForm(form: XmlElement): () => void {
    this.forms.push(form);
    return () => {
      const i = this.forms.indexOf(form);
      if (i >= 0) this.forms.splice(i, 1);
    };
  }

  /** `true` when the feature is advertised. */
  hasFeature(feature: string): boolean {
    return this.features.has(feature);
  }

  /** The sorted feature list. */
  featureList(): string[] {
    return [...this.features.keys()].sort();
  }

  /** The `<query xmlns='…disco#info'/>` payload (XEP-0030 §3.1), with `node` when given. */
  toQuery(node?: string): XmlElement {
    return xml(
      'query',
      { xmlns: NS.DISCO_INFO, node },
      this.identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
      this.featureList().map((f) => xml('feature', { var: f })),
      this.forms.map((f) => f.clone()),
    );
  }
}
